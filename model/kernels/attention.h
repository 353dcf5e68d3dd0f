// The attention core of one layer for a group of equal-length sequences:
// probs = softmax(Q·Kᵀ/√d), ctx = probs·V. In f32 the matmuls read Q, K and
// V as strided views of the fused QKV buffer; the context is written with
// merged heads, (n, t, heads·d), by destination strides, so no split or
// merge copies exist. Sequences are never padded: each group has one
// length, so there is no mask and padding cannot leak.
//
// Primitives are memoized per (group size, length), at most kMaxKernels of
// them: a long-running server meets many (n, t) pairs, and each holds JIT
// code, so the least recently used is dropped (and made again if it comes
// back, ≈ 0.3 ms). Not thread-safe: owned by the inference thread.
//
// With bf16 on, QKV comes in and the context goes out in bf16 (the encoder's
// bf16 linear layers write and read them: no f32 round trip), Q·Kᵀ and P·V
// read bf16 and accumulate in f32; softmax and the probabilities returned
// stay f32, and one reorder makes their bf16 copy for P·V. A first reorder
// splits QKV into dense per-head Q, K, V (3, n, heads, t, d): oneDNN 2.6
// runs bf16 batched matmuls on brgemm (AMX tiles) only for dense operands
// and sends strided views to gemm:jit. (f32 keeps the strided views: there
// the split costs more than it saves, 5.7 ms of reorders for 1.5 ms of
// matmul at 8x128 on Zen 4.) bf16 attention pays where oneDNN runs bf16
// matmuls on AMX tiles; without AMX its rounding buys little, so the
// encoder turns it on only with AMX (EncoderOptions::bf16_attention).
#ifndef ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
#define ATTNSERVE_MODEL_KERNELS_ATTENTION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/kernels/bf16.h"
#include "model/kernels/dnnl_context.h"

namespace attnserve {

class Attention {
 public:
  Attention(DnnlContext* ctx, int heads, int head_size, bool bf16 = false);
  ~Attention();

  // n sequences of t tokens, stored one after another.
  // qkv:   (n, t, 3, heads, d) fused projections
  // probs: (n, heads, t, t) output attention probabilities
  // out:   (n, t, heads·d) context, heads merged
  // The f32 form for an f32 core, the bf16 form for a bf16 one.
  absl::Status Run(int64_t n, int64_t t, const float* qkv, float* probs,
                   float* out);
  absl::Status Run(int64_t n, int64_t t, const bf16_t* qkv, float* probs,
                   bf16_t* out);

  bool bf16() const { return bf16_; }
  // oneDNN's names for the Q·Kᵀ and P·V kernels of (n, t), "score / context"
  // (for instance "brg:avx512_core_amx_bf16 / brg:avx512_core_amx_bf16").
  absl::StatusOr<std::string> ImplNames(int64_t n, int64_t t);

  static constexpr size_t kMaxKernels = 256;
  size_t cached_kernels() const { return kernels_.size(); }

 private:
  struct Kernel;
  struct Cached {
    std::unique_ptr<Kernel> kernel;
    uint64_t last_used = 0;
  };
  absl::Status Create(int64_t n, int64_t t, Kernel* kernel);
  absl::StatusOr<Kernel*> Get(int64_t n, int64_t t);
  absl::Status RunAny(int64_t n, int64_t t, const void* qkv, float* probs,
                      void* out);

  DnnlContext* ctx_;
  int heads_, head_size_;
  bool bf16_;
  // Scratch shared by every shape, grown to the largest seen.
  std::vector<bf16_t> split_;       // (3, n, heads, t, d) bf16 only
  std::vector<bf16_t> probs_bf16_;  // (n, heads, t, t) bf16 only
  std::map<std::pair<int64_t, int64_t>, Cached> kernels_;  // by (n, t)
  uint64_t clock_ = 0;  // Run calls, for last_used
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
