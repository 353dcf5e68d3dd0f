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

struct Linear::Kernel {
  dnnl::matmul matmul;
  memory::desc weight_desc;  // layout this primitive reads the weights in
  dnnl::memory weight;       // packed weights in weight_desc
  dnnl::reorder to_src;      // f32 → bf16 activations (bf16 only)
  std::vector<uint16_t> src_bf16;  // (rows, K) bf16 scratch
  std::vector<uint8_t> src_u8;     // (rows, K) int8 scratch
  std::vector<float> acc;          // (rows, N) int8: scaled products before bias
  dnnl::eltwise_forward gelu;      // int8: GELU after our bias loop
};

Linear::Linear(DnnlContext* ctx, int64_t n, int64_t k, LinearSpec spec)
    : ctx_(ctx), n_(n), k_(k), spec_(spec) {}
Linear::~Linear() = default;

absl::StatusOr<std::unique_ptr<Linear>> Linear::Create(
    DnnlContext* ctx, const std::vector<float>& weight,
    const std::vector<float>& bias, int64_t n, int64_t k, LinearSpec spec) {
  if (static_cast<int64_t>(weight.size()) != n * k ||
      static_cast<int64_t>(bias.size()) != n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Linear: weight has %d values, bias %d; expected (%d, %d) and (%d)",
        weight.size(), bias.size(), n, k, n));
  }
  std::unique_ptr<Linear> linear(new Linear(ctx, n, k, spec));
  linear->bias_ = bias;
  if (spec.precision == Precision::kInt8) {
    // Symmetric per-output-channel quantization: row n of W is scaled so its
    // largest magnitude maps to 127.
    linear->weight_q_.resize(n * k);
    linear->scales_.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      float max = 0;
      for (int64_t c = 0; c < k; ++c) max = std::max(max, std::fabs(weight[r * k + c]));
      const float scale = max > 0 ? max / 127.f : 1.f;
      linear->scales_[r] = scale;
      for (int64_t c = 0; c < k; ++c) {
        linear->weight_q_[r * k + c] =
            static_cast<int8_t>(std::lrint(weight[r * k + c] / scale));
      }
    }
  } else {
    linear->weight_ = weight;
  }
  RETURN_IF_ERROR(CatchDnnl("Linear::Create", [&] {
    linear->bias_mem_ = memory(memory::desc({1, n}, dt::f32, tag::ab),
                               ctx->engine, linear->bias_.data());
  }));
  RETURN_IF_ERROR(linear->GetKernel(kPackRows).status());
  linear->weight_ = {};
  linear->weight_q_ = {};
  return linear;
}

absl::Status Linear::PackWeights(const memory::desc& want) {
  return CatchDnnl("pack weights", [&] {
    // PyTorch's (N, K) row-major is the "ba" layout of the (K, N) operand.
    const bool q = spec_.precision == Precision::kInt8;
    memory plain(memory::desc({k_, n_}, q ? dt::s8 : dt::f32, tag::ba),
                 ctx_->engine,
                 q ? static_cast<void*>(weight_q_.data()) : weight_.data());
    weight_mem_ = memory(want, ctx_->engine);
    dnnl::reorder(plain, weight_mem_).execute(ctx_->stream, plain, weight_mem_);
    ctx_->stream.wait();
  });
}

absl::StatusOr<Linear::Kernel*> Linear::GetKernel(int64_t rows) {
  if (auto it = kernels_.find(rows); it != kernels_.end()) {
    return it->second.get();
  }
  auto kernel = std::make_unique<Kernel>();
  const Precision p = spec_.precision;
  const bool int8 = p == Precision::kInt8;
  absl::Status status = CatchDnnl("create matmul", [&] {
    dnnl::primitive_attr attr;
    if (int8) {
      // dst = scale[n] · Σ (x_u8 − 128) · w_s8: bias, GELU and the residual
      // are applied afterwards with the per-call activation scale.
      attr.set_output_scales(2, scales_);
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
    // Reuse the packed layout when oneDNN accepts it for this row count;
    // otherwise let it choose and repack (checked by desc equality).
    auto make = [&](const memory::desc& wei) {
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(src, wei, bias, dst), attr, ctx_->engine);
    };
    const memory::desc any({k_, n_}, WeightType(p), tag::any);
    dnnl::matmul::primitive_desc pd;
    if (weight_mem_) {
      try {
        pd = make(weight_mem_.get_desc());
      } catch (const dnnl::error&) {
        pd = make(any);
      }
    } else {
      pd = make(any);
    }
    kernel->matmul = dnnl::matmul(pd);
    kernel->weight_desc = pd.weights_desc();
    if (p == Precision::kBFloat16) {
      kernel->src_bf16.resize(rows * k_);
      kernel->to_src = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, Desc2D(rows, k_), ctx_->engine, src));
    }
    if (int8) {
      kernel->src_u8.resize(rows * k_);
      if (spec_.residual) kernel->acc.resize(rows * n_);
      if (spec_.gelu) {
        kernel->gelu = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
            dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference,
                                        dnnl::algorithm::eltwise_gelu_erf, dst),
            ctx_->engine));
      }
    }
  });
  RETURN_IF_ERROR(status);
  if (!weight_mem_) {
    RETURN_IF_ERROR(PackWeights(kernel->weight_desc));
  }
  if (kernel->weight_desc == weight_mem_.get_desc()) {
    kernel->weight = weight_mem_;
  } else {
    // A second layout: repack from the first (rare; costs memory).
    RETURN_IF_ERROR(CatchDnnl("repack weights", [&] {
      kernel->weight = memory(kernel->weight_desc, ctx_->engine);
      dnnl::reorder(weight_mem_, kernel->weight)
          .execute(ctx_->stream, weight_mem_, kernel->weight);
      ctx_->stream.wait();
    }));
  }
  Kernel* raw = kernel.get();
  kernels_.emplace(rows, std::move(kernel));
  return raw;
}

absl::Status Linear::Run(int64_t m, const float* x, float* y) {
  const int64_t rows = RowBucket(m);
  ASSIGN_OR_RETURN(Kernel * kernel, GetKernel(rows));
  if (spec_.precision == Precision::kInt8) return RunInt8(kernel, m, x, y);
  return CatchDnnl("matmul", [&] {
    memory src_f32(Desc2D(rows, k_), ctx_->engine, const_cast<float*>(x));
    memory dst(Desc2D(rows, n_), ctx_->engine, y);
    memory src = src_f32;
    if (!kernel->src_bf16.empty()) {
      src = memory(Desc2D(rows, k_, dt::bf16), ctx_->engine,
                   kernel->src_bf16.data());
      kernel->to_src.execute(ctx_->stream, src_f32, src);
    }
    kernel->matmul.execute(ctx_->stream, {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_WEIGHTS, kernel->weight},
                                          {DNNL_ARG_BIAS, bias_mem_},
                                          {DNNL_ARG_DST, dst}});
  });
}

absl::Status Linear::RunInt8(Kernel* kernel, int64_t m, const float* x,
                             float* y) {
  const int64_t rows = RowBucket(m);
  // Dynamic per-tensor activation scale over the m real rows: the largest |x|
  // maps to 127 (rows past m are scratch and may hold anything finite).
  const float scale = AbsMax(x, m * k_) / 127.f;
  Quantize(x, rows * k_, scale > 0 ? 1.f / scale : 0.f,
           kernel->src_u8.data());
  float* acc = spec_.residual ? kernel->acc.data() : y;
  RETURN_IF_ERROR(CatchDnnl("int8 matmul", [&] {
    memory src(Desc2D(rows, k_, dt::u8), ctx_->engine, kernel->src_u8.data());
    memory dst(Desc2D(rows, n_), ctx_->engine, acc);
    kernel->matmul.execute(ctx_->stream, {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_WEIGHTS, kernel->weight},
                                          {DNNL_ARG_DST, dst}});
    ctx_->stream.wait();
  }));
  // (rows, N): y = [y +] act(scale · acc + b). Without GELU one pass does it;
  // with GELU the activation runs (on oneDNN) before the residual add.
  const float* b = bias_.data();
  const bool fused = spec_.residual && !spec_.gelu;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = acc + r * n_;
    float* out = y + r * n_;
    if (fused) {
      for (int64_t c = 0; c < n_; ++c) out[c] += scale * row[c] + b[c];
    } else {
      for (int64_t c = 0; c < n_; ++c) row[c] = scale * row[c] + b[c];
    }
  }
  if (spec_.gelu) {
    RETURN_IF_ERROR(CatchDnnl("gelu", [&] {
      memory data(Desc2D(rows, n_), ctx_->engine, acc);
      kernel->gelu.execute(ctx_->stream,
                           {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}});
      ctx_->stream.wait();
    }));
    if (spec_.residual) {
      for (int64_t i = 0; i < rows * n_; ++i) y[i] += acc[i];
    }
  }
  return absl::OkStatus();
}

size_t Linear::weight_bytes() const {
  size_t bytes = (bias_.size() + scales_.size()) * sizeof(float);
  if (weight_mem_) bytes += weight_mem_.get_desc().get_size();
  for (const auto& [rows, kernel] : kernels_) {
    if (kernel->weight && kernel->weight.get() != weight_mem_.get()) {
      bytes += kernel->weight_desc.get_size();
    }
  }
  return bytes;
}

}  // namespace attnserve
