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
#ifndef ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
#define ATTNSERVE_MODEL_KERNELS_ATTENTION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "model/kernels/dnnl_context.h"

namespace attnserve {

class Attention {
 public:
  Attention(DnnlContext* ctx, int heads, int head_size);
  ~Attention();

  // n sequences of t tokens, stored one after another.
  // qkv:   (n, t, 3, heads, d) fused projections
  // probs: (n, heads, t, t) output attention probabilities
  // out:   (n, t, heads·d) context, heads merged
  absl::Status Run(int64_t n, int64_t t, const float* qkv, float* probs,
                   float* out);

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
  std::map<std::pair<int64_t, int64_t>, Cached> kernels_;  // by (n, t)
  uint64_t clock_ = 0;  // Run calls, for last_used
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_ATTENTION_H_
