#include "model/kernels/linear.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace attnserve {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dt WeightType(Precision p) {
  switch (p) {
    case Precision::kBFloat16:
      return dt::bf16;
    case Precision::kInt8:
      return dt::s8;
    case Precision::kFloat32:
      break;
  }
  return dt::f32;
}

dt SourceType(Precision p) {
  return p == Precision::kInt8 ? dt::u8 : WeightType(p);
}

// The row count the weights are packed for: the layout oneDNN picks can
// depend on M, and most rows are served from large batches.
constexpr int64_t kPackRows = 256;

// int8 activations are u8 = round(x / scale) + 128 (u8·s8 is what VNNI
// multiplies; the static zero point makes it symmetric).
constexpr int32_t kZeroPoint = 128;

// max |x[i]|, on the OpenMP threads oneDNN uses (the same libgomp pool).
float AbsMax(const float* x, int64_t n) {
  float max = 0;
#pragma omp parallel for simd reduction(max : max) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    max = max > a ? max : a;
  }
  return max;
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
  dnnl::reorder to_u8;             // int8: f32 → u8 with a per-call scale
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
      // dst = scale[n]·(Σ (x_u8 − 128)·w_s8 + bias[n]) with scale[n] =
      // activation scale · weight scale[n], given per call: the activation
      // scale is dynamic, and runtime scales keep one primitive for every
      // layer. oneDNN 2.6 adds the bias before the scale (see Run).
      attr.set_output_scales(2, {DNNL_RUNTIME_F32_VAL});
      attr.set_zero_points(DNNL_ARG_SRC, 0, {kZeroPoint});
    }
    dnnl::post_ops ops;
    if (spec_.gelu) {
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    }
    if (spec_.residual) ops.append_sum(1.f);
    attr.set_post_ops(ops);
    const memory::desc src = Desc2D(rows, k_, SourceType(p));
    const memory::desc dst = Desc2D(rows, n_);
    const memory::desc bias({1, n_}, dt::f32, tag::ab);
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
      dnnl::primitive_attr quantize;
      quantize.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
      quantize.set_zero_points(DNNL_ARG_DST, 0, {kZeroPoint});
      kernel->to_u8 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, Desc2D(rows, k_), ctx_->engine, src, quantize));
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
  } else if (kernels->n() != n || kernels->k() != k || kernels->ctx() != ctx) {
    return absl::InvalidArgumentError(
        "Linear: shared kernels of another shape");
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
    linear->call_scales_.resize(n);
    linear->call_bias_.resize(n);
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
  const int64_t rows = RowBucket(m);
  // Dynamic per-tensor activation scale over the m real rows: the largest |x|
  // maps to 127 (rows past m are scratch and may hold anything finite).
  const float max = AbsMax(x, m * k);
  const float scale = max > 0 ? max / 127.f : 1.f;
  // (N) this call's output scales, and the bias divided by them because
  // oneDNN 2.6 computes dst = scale[n]·(acc + bias[n]).
  for (int64_t c = 0; c < n; ++c) {
    call_scales_[c] = scale * scales_[c];
    call_bias_[c] = bias_[c] / call_scales_[c];
  }
  float inv = 1.f / scale;
  return CatchDnnl("int8 matmul", [&] {
    memory src_f32(Desc2D(rows, k), ctx->engine, const_cast<float*>(x));
    memory src(Desc2D(rows, k, dt::u8), ctx->engine, kernel->src_u8.data());
    memory dst(Desc2D(rows, n), ctx->engine, y);
    memory inv_mem(memory::desc({1}, dt::f32, tag::a), ctx->engine, &inv);
    memory scales(memory::desc({n}, dt::f32, tag::a), ctx->engine,
                  call_scales_.data());
    memory bias(memory::desc({1, n}, dt::f32, tag::ab), ctx->engine,
                call_bias_.data());
    kernel->to_u8.execute(ctx->stream,
                          {{DNNL_ARG_FROM, src_f32},
                           {DNNL_ARG_TO, src},
                           {DNNL_ARG_ATTR_OUTPUT_SCALES, inv_mem}});
    kernel->matmul.execute(ctx->stream,
                           {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_BIAS, bias},
                            {DNNL_ARG_DST, dst},
                            {DNNL_ARG_ATTR_OUTPUT_SCALES, scales}});
  });
}

size_t Linear::weight_bytes() const {
  size_t bytes = (bias_.size() + scales_.size()) * sizeof(float);
  for (const memory& m : packed_) bytes += m.get_desc().get_size();
  return bytes;
}

}  // namespace attnserve
