#include "model/linear.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "model/status_macros.h"

namespace attnserve {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dt WeightType(Precision p) {
  switch (p) {
    case Precision::kBFloat16: return dt::bf16;
    case Precision::kInt8: return dt::s8;
    case Precision::kFloat32: break;
  }
  return dt::f32;
}

dt SourceType(Precision p) {
  return p == Precision::kInt8 ? dt::u8 : WeightType(p);
}

// The row count the weights are packed for: the layout oneDNN picks can
// depend on M, and most rows are served from large batches.
constexpr int64_t kPackRows = 256;

// int8 activations are u8 = round(x / scale) + 128: one static zero point
// keeps the VNNI kernel (runtime zero points and scales take a generic one).
constexpr int32_t kZeroPoint = 128;

// max |x[i]|. Sixteen partial maxima let the compiler vectorize without
// -ffast-math (a single running max is a loop-carried dependence).
float AbsMax(const float* x, int64_t n) {
  float lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) {
      const float a = std::fabs(x[i + l]);
      lanes[l] = lanes[l] > a ? lanes[l] : a;
    }
  }
  float max = 0;
  for (; i < n; ++i) max = std::max(max, std::fabs(x[i]));
  for (float l : lanes) max = std::max(max, l);
  return max;
}

// q = round_half_even(x · inv) + 128, clamped to u8. Adding and subtracting
// 1.5·2²³ rounds to nearest even in the default FP mode and vectorizes with
// baseline SSE2 (nearbyint is a libm call there).
void Quantize(const float* x, int64_t n, float inv, uint8_t* q) {
  constexpr float kRound = 12582912.f;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * inv;
    v = v < -128.f ? -128.f : (v > 127.f ? 127.f : v);
    v = (v + kRound) - kRound;
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + kZeroPoint);
  }
}

}  // namespace

int64_t RowBucket(int64_t m) {
  // Exact below 16 (latency), then multiples of 16, then of 64: at most a few
  // dozen primitives for any batch, at most ~12% padded rows.
  if (m <= 16) return m;
  if (m <= 512) return (m + 15) / 16 * 16;
  return (m + 63) / 64 * 64;
}

struct LinearKernels::Kernel {
  dnnl::matmul matmul;
  memory::desc weight_desc;        // layout this primitive reads the weights in
  dnnl::reorder to_bf16;           // bf16: f32 → bf16 activations
  std::vector<uint16_t> src_bf16;  // (rows, K) bf16 scratch
  std::vector<uint8_t> src_u8;     // (rows, K) int8 scratch
  std::vector<float> acc;          // (rows, N) int8: products before scales
  dnnl::eltwise_forward gelu;      // int8: GELU after our epilogue
};

LinearKernels::LinearKernels(DnnlContext* ctx, int64_t n, int64_t k,
                             LinearSpec spec)
    : ctx_(ctx), n_(n), k_(k), spec_(spec) {}
LinearKernels::~LinearKernels() = default;

absl::StatusOr<LinearKernels::Kernel*> LinearKernels::Get(int64_t rows) {
  if (auto it = kernels_.find(rows); it != kernels_.end()) {
    return it->second.get();
  }
  auto kernel = std::make_unique<Kernel>();
  const Precision p = spec_.precision;
  const bool int8 = p == Precision::kInt8;
  RETURN_IF_ERROR(CatchDnnl("create matmul", [&] {
    dnnl::primitive_attr attr;
    if (int8) {
      // acc = Σ (x_u8 − 128) · w_s8; the scales, bias, GELU and residual are
      // applied by our epilogue, so the primitive is the same for every layer.
      attr.set_zero_points(DNNL_ARG_SRC, 0, {kZeroPoint});
    } else {
      dnnl::post_ops ops;
      if (spec_.gelu) {
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
      }
      if (spec_.residual) ops.append_sum(1.f);
      attr.set_post_ops(ops);
    }
    const memory::desc src = Desc2D(rows, k_, SourceType(p));
    const memory::desc dst = Desc2D(rows, n_);
    const memory::desc bias =
        int8 ? memory::desc() : memory::desc({1, n_}, dt::f32, tag::ab);
    auto make = [&](const memory::desc& wei) {
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(src, wei, bias, dst), attr, ctx_->engine);
    };
    const memory::desc any({k_, n_}, WeightType(p), tag::any);
    dnnl::matmul::primitive_desc pd;
    if (packed_.is_zero()) {
      pd = make(any);
      packed_ = pd.weights_desc();
    } else {
      // Reuse the packed layout when oneDNN accepts it for this row count.
      try {
        pd = make(packed_);
      } catch (const dnnl::error&) {
        pd = make(any);
      }
    }
    kernel->matmul = dnnl::matmul(pd);
    kernel->weight_desc = pd.weights_desc();
    if (p == Precision::kBFloat16) {
      kernel->src_bf16.resize(rows * k_);
      kernel->to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, Desc2D(rows, k_), ctx_->engine, src));
    }
    if (int8) {
      kernel->src_u8.resize(rows * k_);
      kernel->acc.resize(rows * n_);
      if (spec_.gelu) {
        kernel->gelu =
            dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
                dnnl::eltwise_forward::desc(
                    dnnl::prop_kind::forward_inference,
                    dnnl::algorithm::eltwise_gelu_erf, dst),
                ctx_->engine));
      }
    }
  }));
  Kernel* raw = kernel.get();
  kernels_.emplace(rows, std::move(kernel));
  return raw;
}

Linear::Linear(std::shared_ptr<LinearKernels> kernels)
    : kernels_(std::move(kernels)) {}
Linear::~Linear() = default;

absl::StatusOr<std::unique_ptr<Linear>> Linear::Create(
    DnnlContext* ctx, const std::vector<float>& weight,
    const std::vector<float>& bias, int64_t n, int64_t k, LinearSpec spec,
    std::shared_ptr<LinearKernels> kernels) {
  if (static_cast<int64_t>(weight.size()) != n * k ||
      static_cast<int64_t>(bias.size()) != n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Linear: weight has %d values, bias %d; expected (%d, %d) and (%d)",
        weight.size(), bias.size(), n, k, n));
  }
  if (kernels == nullptr) {
    kernels = std::make_shared<LinearKernels>(ctx, n, k, spec);
  } else if (kernels->n() != n || kernels->k() != k ||
             kernels->ctx() != ctx) {
    return absl::InvalidArgumentError("Linear: shared kernels of another shape");
  }
  std::unique_ptr<Linear> linear(new Linear(kernels));
  linear->bias_ = bias;
  const bool int8 = spec.precision == Precision::kInt8;
  std::vector<int8_t> quantized;  // (N, K) s8
  if (int8) {
    // Symmetric per-output-channel quantization: row n of W is scaled so its
    // largest magnitude maps to 127.
    quantized.resize(n * k);
    linear->scales_.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      const float max = AbsMax(&weight[r * k], k);
      const float scale = max > 0 ? max / 127.f : 1.f;
      linear->scales_[r] = scale;
      for (int64_t c = 0; c < k; ++c) {
        quantized[r * k + c] =
            static_cast<int8_t>(std::lrint(weight[r * k + c] / scale));
      }
    }
  }
  ASSIGN_OR_RETURN(LinearKernels::Kernel * first, kernels->Get(kPackRows));
  RETURN_IF_ERROR(CatchDnnl("pack weights", [&] {
    linear->bias_mem_ = memory(memory::desc({1, n}, dt::f32, tag::ab),
                               ctx->engine, linear->bias_.data());
    // PyTorch's (N, K) row-major is the "ba" layout of the (K, N) operand.
    memory plain(memory::desc({k, n}, int8 ? dt::s8 : dt::f32, tag::ba),
                 ctx->engine,
                 int8 ? static_cast<void*>(quantized.data())
                      : const_cast<float*>(weight.data()));
    memory packed(first->weight_desc, ctx->engine);
    dnnl::reorder(plain, packed).execute(ctx->stream, plain, packed);
    ctx->stream.wait();
    linear->packed_.push_back(packed);
  }));
  return linear;
}

absl::StatusOr<memory> Linear::WeightsFor(const LinearKernels::Kernel& kernel) {
  for (const memory& m : packed_) {
    if (m.get_desc() == kernel.weight_desc) return m;
  }
  // oneDNN refused the preferred layout for this row count: repack once
  // (costs memory; not seen with oneDNN 2.6 on AVX-512, kept for safety).
  memory repacked;
  RETURN_IF_ERROR(CatchDnnl("repack weights", [&] {
    DnnlContext* ctx = kernels_->ctx();
    repacked = memory(kernel.weight_desc, ctx->engine);
    dnnl::reorder(packed_[0], repacked)
        .execute(ctx->stream, packed_[0], repacked);
    ctx->stream.wait();
  }));
  packed_.push_back(repacked);
  return repacked;
}

absl::Status Linear::Run(int64_t m, const float* x, float* y) {
  const int64_t rows = RowBucket(m);
  ASSIGN_OR_RETURN(LinearKernels::Kernel * kernel, kernels_->Get(rows));
  if (kernels_->spec().precision == Precision::kInt8) {
    return RunInt8(kernel, m, x, y);
  }
  ASSIGN_OR_RETURN(memory weights, WeightsFor(*kernel));
  DnnlContext* ctx = kernels_->ctx();
  const int64_t k = kernels_->k(), n = kernels_->n();
  return CatchDnnl("matmul", [&] {
    memory src(Desc2D(rows, k), ctx->engine, const_cast<float*>(x));
    memory dst(Desc2D(rows, n), ctx->engine, y);
    if (!kernel->src_bf16.empty()) {
      memory bf16(Desc2D(rows, k, dt::bf16), ctx->engine,
                  kernel->src_bf16.data());
      kernel->to_bf16.execute(ctx->stream, src, bf16);
      src = bf16;
    }
    kernel->matmul.execute(ctx->stream, {{DNNL_ARG_SRC, src},
                                         {DNNL_ARG_WEIGHTS, weights},
                                         {DNNL_ARG_BIAS, bias_mem_},
                                         {DNNL_ARG_DST, dst}});
  });
}

absl::Status Linear::RunInt8(LinearKernels::Kernel* kernel, int64_t m,
                             const float* x, float* y) {
  ASSIGN_OR_RETURN(memory weights, WeightsFor(*kernel));
  DnnlContext* ctx = kernels_->ctx();
  const int64_t k = kernels_->k(), n = kernels_->n();
  const LinearSpec& spec = kernels_->spec();
  const int64_t rows = RowBucket(m);
  // Dynamic per-tensor activation scale over the m real rows: the largest |x|
  // maps to 127 (rows past m are scratch and may hold anything finite).
  const float scale = AbsMax(x, m * k) / 127.f;
  Quantize(x, rows * k, scale > 0 ? 1.f / scale : 0.f, kernel->src_u8.data());
  float* acc = kernel->acc.data();
  RETURN_IF_ERROR(CatchDnnl("int8 matmul", [&] {
    memory src(Desc2D(rows, k, dt::u8), ctx->engine, kernel->src_u8.data());
    memory dst(Desc2D(rows, n), ctx->engine, acc);
    kernel->matmul.execute(ctx->stream, {{DNNL_ARG_SRC, src},
                                         {DNNL_ARG_WEIGHTS, weights},
                                         {DNNL_ARG_DST, dst}});
    ctx->stream.wait();
  }));
  // (rows, N): y = [y +] act(scale · w_scale[n] · acc + b). Without GELU one
  // pass does it; with GELU the activation runs (on oneDNN) before the add.
  const float* b = bias_.data();
  const float* w = scales_.data();
  const bool fused = spec.residual && !spec.gelu;
  float* target = spec.residual ? acc : y;
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = acc + r * n;
    float* out = (fused ? y : target) + r * n;
    if (fused) {
      for (int64_t c = 0; c < n; ++c) out[c] += scale * w[c] * in[c] + b[c];
    } else {
      for (int64_t c = 0; c < n; ++c) out[c] = scale * w[c] * in[c] + b[c];
    }
  }
  if (spec.gelu) {
    RETURN_IF_ERROR(CatchDnnl("gelu", [&] {
      memory data(Desc2D(rows, n), ctx->engine, target);
      kernel->gelu.execute(ctx->stream,
                           {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}});
      ctx->stream.wait();
    }));
    if (spec.residual) {
      for (int64_t i = 0; i < rows * n; ++i) y[i] += acc[i];
    }
  }
  return absl::OkStatus();
}

size_t Linear::weight_bytes() const {
  size_t bytes = (bias_.size() + scales_.size()) * sizeof(float);
  for (const memory& m : packed_) bytes += m.get_desc().get_size();
  return bytes;
}

}  // namespace attnserve
