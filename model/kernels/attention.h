// The attention core of one layer for a group of equal-length sequences:
// probs = softmax(Q·Kᵀ/√d), ctx = probs·V, reading Q, K and V as strided views
// of the fused QKV buffer and writing ctx with merged heads, so no transpose or
// merge copies exist. Sequences are never padded: each group has one length,
// so there is no mask and padding cannot leak.
//
// Primitives are memoized per (group size, length), at most kMaxKernels of
// them: a long-running server meets many (n, t) pairs, and each holds JIT
// code, so the least recently used is dropped (and made again if it comes
// back, ≈ 0.3 ms). Not thread-safe: owned by the inference thread.
//
// With bf16 on, Q·Kᵀ and P·V read bf16 copies of QKV and of the
// probabilities (one reorder each) and accumulate in f32; softmax and the
// probabilities returned stay f32. It pays where oneDNN runs bf16 matmuls on
// AMX tiles; on AVX-512 BF16 without AMX bf16 matmuls are slower than f32,
// so the encoder turns it on only with AMX (EncoderOptions::bf16_attention).
#ifndef ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
#define ATTNSERVE_MODEL_KERNELS_ATTENTION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
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
  absl::Status Run(int64_t n, int64_t t, const float* qkv, float* probs,
                   float* out);

  bool bf16() const { return bf16_; }

  static constexpr size_t kMaxKernels = 256;
  size_t cached_kernels() const { return kernels_.size(); }

 private:
  struct Kernel;
  struct Cached {
    std::unique_ptr<Kernel> kernel;
    uint64_t last_used = 0;
  };
  absl::Status Create(int64_t n, int64_t t, Kernel* kernel);

  DnnlContext* ctx_;
  int heads_, head_size_;
  bool bf16_;
  // bf16 only: scratch shared by every shape, grown to the largest seen.
  std::vector<uint16_t> qkv_bf16_;    // (n, t, 3, heads, d)
  std::vector<uint16_t> probs_bf16_;  // (n, heads, t, t)
  std::map<std::pair<int64_t, int64_t>, Cached> kernels_;  // by (n, t)
  uint64_t clock_ = 0;  // Run calls, for last_used
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
