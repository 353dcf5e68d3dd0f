// A fully connected layer on oneDNN: y (M, N) = [y +] act(x (M, K) · Wᵀ + b).
//
// Weights are packed once, at construction, into the blocked layout oneDNN
// prefers (f32, bf16, or s8 with per-output-channel scales). int8 activations
// are quantized per row (token) at each call, so a token's result does not
// depend on the rows it is batched with. Primitives do not
// depend on the weight values, so every layer of one shape shares one
// LinearKernels: a primitive per row-count bucket, created once and reused.
// Not thread-safe: owned by the inference thread.
#ifndef ATTNSERVE_MODEL_KERNELS_LINEAR_H_
#define ATTNSERVE_MODEL_KERNELS_LINEAR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/kernels/bf16.h"
#include "model/kernels/dnnl_context.h"
#include "model/types.h"

namespace attnserve {

struct LinearSpec {
  Activation activation = Activation::kNone;  // after the bias
  bool residual = false;  // add the result to what y already holds
  Precision precision = Precision::kFloat32;
  // bf16 precision only. bf16_src: x comes in as bf16, written so by the
  // kernel before (no f32 → bf16 reorder here). bf16_dst: y goes out as bf16
  // for a kernel that reads bf16 (not with `residual`: the residual stream
  // stays f32).
  bool bf16_src = false;
  bool bf16_dst = false;
};

// Rows are computed in buckets so a few primitives serve every batch size:
// callers must size x and y for RowBucket(M) rows (rows past M are scratch).
int64_t RowBucket(int64_t m);

// The primitives (and their activation scratch) of one (N, K, spec).
class LinearKernels {
 public:
  struct Kernel;
  LinearKernels(DnnlContext* ctx, int64_t n, int64_t k, LinearSpec spec);
  ~LinearKernels();

  // The kernel for `rows` rows; created on first use. `packed` is the layout
  // the first kernel chose; later ones are asked to read that one too.
  absl::StatusOr<Kernel*> Get(int64_t rows);
  // Get(rows) now, and the activation scratch sized for it: what the first
  // Run with this many rows would otherwise do.
  absl::Status Prepare(int64_t rows);
  // oneDNN's name for the matmul kernel that runs `rows` rows (for instance
  // "brg:avx512_core_amx_bf16"): what the benchmarks record per precision.
  absl::StatusOr<std::string> ImplName(int64_t rows);

  DnnlContext* ctx() const { return ctx_; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  const LinearSpec& spec() const { return spec_; }

  // Activation scratch shared by every kernel (row count) of this shape,
  // sized for the largest row count run so far: one buffer per shape, not
  // one per row bucket, so memory stays at max rows × K however many buckets
  // a long-running server has used. Kernels run one at a time (one thread).
  struct Scratch {
    std::vector<bf16_t> bf16;       // (rows, K) bf16 activations
    std::vector<uint8_t> u8;        // (rows, K) int8 quantized activations
    std::vector<float> row_scales;  // (rows) int8 per-row scales
  };
  Scratch& scratch() { return scratch_; }

  // x (RowBucket(m), K) as `kernel` reads it: x itself, its bf16 copy or its
  // int8 codes (with the row scales) in the scratch.
  absl::StatusOr<dnnl::memory> Input(Kernel* kernel, int64_t m, const void* x);

 private:
  DnnlContext* ctx_;
  int64_t n_, k_;
  LinearSpec spec_;
  dnnl::memory::desc packed_;  // the preferred weight layout, once known
  std::map<int64_t, std::unique_ptr<Kernel>> kernels_;  // by rows
  Scratch scratch_;
};

class Linear {
 public:
  // weight: (N, K) row-major, as PyTorch's Linear stores it; bias: (N).
  // `kernels` may be shared with other layers of the same shape and spec;
  // null = private ones.
  static absl::StatusOr<std::unique_ptr<Linear>> Create(
      DnnlContext* ctx, const std::vector<float>& weight,
      const std::vector<float>& bias, int64_t n, int64_t k, LinearSpec spec,
      std::shared_ptr<LinearKernels> kernels = nullptr);
  ~Linear();

  // x: (RowBucket(m), K); y: (RowBucket(m), N); each bf16 where the spec's
  // bf16_src / bf16_dst say so, else f32.
  absl::Status Run(int64_t m, const float* x, float* y);
  absl::Status Run(int64_t m, const bf16_t* x, float* y);
  absl::Status Run(int64_t m, const float* x, bf16_t* y);
  absl::Status Run(int64_t m, const bf16_t* x, bf16_t* y);

  // Several layers of one shape (sharing one LinearKernels) on the same x,
  // y[i] = layers[i](x): bf16 converts and int8 quantizes x once for all of
  // them (the attention's query, key and value projections).
  static absl::Status RunSameInput(int64_t m, const float* x,
                                   absl::Span<Linear* const> layers,
                                   absl::Span<float* const> ys);
  static absl::Status RunSameInput(int64_t m, const float* x,
                                   absl::Span<Linear* const> layers,
                                   absl::Span<bf16_t* const> ys);

  int64_t out_features() const { return kernels_->n(); }

  // Bytes held by the packed weights, scales and bias.
  size_t weight_bytes() const;

 private:
  explicit Linear(std::shared_ptr<LinearKernels> kernels);
  // The packed weights in the layout `kernel` reads (repacked on demand in
  // the rare case oneDNN insists on another layout for some row count).
  absl::StatusOr<dnnl::memory> WeightsFor(const LinearKernels::Kernel& kernel);
  absl::Status RunAny(int64_t m, bool bf16_src, const void* x, bool bf16_dst,
                      void* y);
  // Out: float, bf16_t, or void (RunAny, whose types the flags say).
  template <typename Out>
  static absl::Status RunSameInput(int64_t m, bool bf16_src, const void* x,
                                   absl::Span<Linear* const> layers,
                                   bool bf16_dst, absl::Span<Out* const> ys);
  // The matmul on an input from LinearKernels::Input, into y (rows, N).
  absl::Status Execute(LinearKernels::Kernel* kernel, int64_t rows,
                       const dnnl::memory& src, void* y);

  std::shared_ptr<LinearKernels> kernels_;
  std::vector<dnnl::memory> packed_;  // [0] = preferred layout, then others
  std::vector<float> scales_;  // (N) int8: W[n, :] ≈ scales_[n] · W_s8[n, :]
  std::vector<float> bias_;    // (N)
  dnnl::memory bias_mem_;      // (1, N) f32 over bias_
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_LINEAR_H_
