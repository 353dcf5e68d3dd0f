// In-place LayerNorm over the last axis on oneDNN, one primitive per row
// bucket shared by every layer (the primitive does not depend on γ and β).
// Not thread-safe: owned by the inference thread.
#ifndef ATTNSERVE_MODEL_KERNELS_LAYER_NORM_H_
#define ATTNSERVE_MODEL_KERNELS_LAYER_NORM_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "model/kernels/dnnl_context.h"

namespace attnserve {

class LayerNorm {
 public:
  LayerNorm(DnnlContext* ctx, int64_t width, float eps)
      : ctx_(ctx), width_(width), eps_(eps) {}

  // x: (rows, width) normalized in place; gamma, beta: (width).
  absl::Status Run(int64_t rows, float* x, const std::vector<float>& gamma,
                   const std::vector<float>& beta);
  // Creates the primitive for `rows` now instead of at its first Run.
  absl::Status Prepare(int64_t rows);

 private:
  // The primitive for `rows`, created on first use.
  dnnl::layer_normalization_forward& Kernel(int64_t rows);

  DnnlContext* ctx_;
  int64_t width_;
  float eps_;
  absl::flat_hash_map<int64_t, dnnl::layer_normalization_forward> kernels_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_LAYER_NORM_H_
