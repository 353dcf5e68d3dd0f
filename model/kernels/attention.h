// The attention core of one layer for a group of equal-length sequences:
// probs = softmax(Q·Kᵀ/√d), ctx = probs·V. Q, K and V come from three
// buffers of (tokens, heads·d) rows, which the matmuls read in place as
// (n, heads, t, d) ("acbd") and Kᵀ as (n, heads, d, t) ("adbc"); the context
// is written the same way, heads merged. Those are layouts oneDNN 2.6's
// brgemm batched matmul takes (AMX tiles where present); strided views into
// one fused QKV buffer were sent to gemm:jit. So no split, transpose or
// merge copy exists. Sequences are never padded: each group has one length,
// so there is no mask and padding cannot leak.
//
// Primitives are memoized per (group size, length), at most kMaxKernels of
// them: a long-running server meets many (n, t) pairs, and each holds JIT
// code, so the least recently used is dropped (and made again if it comes
// back, ≈ 0.3 ms). Not thread-safe: owned by the inference thread.
//
// With bf16 on, Q, K, V come in and the context goes out in bf16 (the
// encoder's bf16 linear layers write and read them: no f32 round trip), and
// Q·Kᵀ and P·V accumulate in f32; softmax and the probabilities returned
// stay f32, and one reorder makes their bf16 copy for P·V. bf16 attention
// pays where oneDNN runs bf16 matmuls on AMX tiles; without AMX its rounding
// buys little, so the encoder turns it on only with AMX
// (EncoderOptions::bf16_attention).
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
  // q, k, v: (n, t, heads·d) each, the projections
  // probs:   (n, heads, t, t) output attention probabilities
  // out:     (n, t, heads·d) context, heads merged
  // The f32 form for an f32 core, the bf16 form for a bf16 one.
  absl::Status Run(int64_t n, int64_t t, const float* q, const float* k,
                   const float* v, float* probs, float* out);
  absl::Status Run(int64_t n, int64_t t, const bf16_t* q, const bf16_t* k,
                   const bf16_t* v, float* probs, bf16_t* out);

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
  absl::Status RunAny(int64_t n, int64_t t, const void* q, const void* k,
                      const void* v, float* probs, void* out);

  DnnlContext* ctx_;
  int heads_, head_size_;
  bool bf16_;
  // bf16 only: (n, heads, t, t), shared by every shape, grown to the
  // largest seen.
  std::vector<bf16_t> probs_bf16_;
  std::map<std::pair<int64_t, int64_t>, Cached> kernels_;  // by (n, t)
  uint64_t clock_ = 0;  // Run calls, for last_used
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
