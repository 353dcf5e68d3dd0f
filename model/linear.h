// A fully connected layer on oneDNN: y (M, N) = [y +] act(x (M, K) · Wᵀ + b).
//
// Weights are packed once, at construction, into the blocked layout oneDNN
// prefers (f32, bf16, or s8 with per-output-channel scales); a primitive is
// created once per row-count bucket and reused. Not thread-safe: owned by the
// inference thread.
#ifndef ATTNSERVE_MODEL_LINEAR_H_
#define ATTNSERVE_MODEL_LINEAR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dnnl_context.h"
#include "model/encoder.h"

namespace attnserve {

struct LinearSpec {
  bool gelu = false;      // erf GELU after the bias
  bool residual = false;  // add the result to what y already holds
  Precision precision = Precision::kFloat32;
};

// Rows are computed in buckets so a few primitives serve every batch size:
// callers must size x and y for RowBucket(M) rows (rows past M are scratch).
int64_t RowBucket(int64_t m);

class Linear {
 public:
  // weight: (N, K) row-major, as PyTorch's Linear stores it; bias: (N).
  static absl::StatusOr<std::unique_ptr<Linear>> Create(
      DnnlContext* ctx, const std::vector<float>& weight,
      const std::vector<float>& bias, int64_t n, int64_t k, LinearSpec spec);
  ~Linear();

  // x: (RowBucket(m), K) f32; y: (RowBucket(m), N) f32.
  absl::Status Run(int64_t m, const float* x, float* y);

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  // Bytes held by the packed weights, scales and bias.
  size_t weight_bytes() const;

 private:
  struct Kernel;
  Linear(DnnlContext* ctx, int64_t n, int64_t k, LinearSpec spec);
  absl::StatusOr<Kernel*> GetKernel(int64_t rows);
  absl::Status PackWeights(const dnnl::memory::desc& want);
  absl::Status RunInt8(Kernel* kernel, int64_t m, const float* x, float* y);

  DnnlContext* ctx_;
  int64_t n_, k_;
  LinearSpec spec_;
  std::vector<float> weight_;    // (N, K) plain f32, released after packing
  std::vector<int8_t> weight_q_;  // (N, K) plain s8 (int8), released after packing
  std::vector<float> scales_;    // (N) int8: W[n, :] ≈ scales_[n] · weight_q_[n, :]
  dnnl::memory weight_mem_;      // packed
  dnnl::memory bias_mem_;        // (N) f32
  std::vector<float> bias_;      // (N) backing store of bias_mem_
  std::map<int64_t, std::unique_ptr<Kernel>> kernels_;  // by rows
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_LINEAR_H_
