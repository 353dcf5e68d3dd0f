#include "model/kernels/linear.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/kernels/cpu.h"
#include "model/kernels/quantize.h"

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

// The int8 matmul is written as a batch of one, (1, rows, K) × (1, K, N):
// in 3-D, oneDNN 2.6's brgemm kernel takes a (1, rows, 1) binary post-op (one
// scale per row), which the 2-D form sends to the reference kernel.
dnnl::memory::desc Desc3D(int64_t rows, int64_t cols, dt type = dt::f32) {
  return dnnl::memory::desc({1, rows, cols}, type, tag::abc);
}

// max |x[i]| of one weight row, at load. A plain loop: clang 14 at -O1 (the
// sanitizer builds) miscompiled the `omp parallel for simd reduction(max:)`
// this was, returning a smaller maximum for some rows, so int8 weights
// quantized wrong in those builds only.
float AbsMax(const float* x, int64_t n) {
  float max = 0;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, std::fabs(x[i]));
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
  memory::desc weight_desc;  // layout this primitive reads the weights in
  dnnl::reorder to_bf16;     // bf16: f32 → bf16 activations
};

// Grows `v` to at least n elements; never shrinks.
template <typename T>
T* AtLeast(std::vector<T>* v, int64_t n) {
  if (static_cast<int64_t>(v->size()) < n) v->resize(n);
  return v->data();
}

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
    dnnl::post_ops ops;
    if (int8) {
      // y = act(acc[r, n] · row_scale[r] · weight_scale[n] + bias[n]) [+ y],
      // acc = Σ (x_u8 − 128)·w_s8 exact in int32. All three vectors are
      // binary post-ops given per call, so one primitive serves every layer
      // of this shape and brgemm (VNNI/AMX) runs it; output scales would
      // send it to gemm:jit or, with a residual sum, the reference kernel.
      attr.set_zero_points(DNNL_ARG_SRC, 0, {kInt8ZeroPoint});
      ops.append_binary(dnnl::algorithm::binary_mul,
                        memory::desc({1, rows, 1}, dt::f32, tag::abc));
      ops.append_binary(dnnl::algorithm::binary_mul,
                        memory::desc({1, 1, n_}, dt::f32, tag::abc));
      ops.append_binary(dnnl::algorithm::binary_add,
                        memory::desc({1, 1, n_}, dt::f32, tag::abc));
    }
    switch (spec_.activation) {
      case Activation::kNone:
        break;
      case Activation::kGeluErf:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
        break;
      case Activation::kGeluTanh:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f);
        break;
      case Activation::kRelu:
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
        break;
    }
    if (spec_.residual) ops.append_sum(1.f);
    attr.set_post_ops(ops);
    auto make = [&](const memory::desc& wei) {
      if (int8) {
        return dnnl::matmul::primitive_desc(
            dnnl::matmul::desc(Desc3D(rows, k_, dt::u8), wei, Desc3D(rows, n_)),
            attr, ctx_->engine);
      }
      const memory::desc bias({1, n_}, dt::f32, tag::ab);
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(
              Desc2D(rows, k_, SourceType(p)), wei, bias,
              Desc2D(rows, n_, spec_.bf16_dst ? dt::bf16 : dt::f32)),
          attr, ctx_->engine);
    };
    const memory::desc any =
        int8 ? memory::desc({1, k_, n_}, dt::s8, tag::any)
             : memory::desc({k_, n_}, WeightType(p), tag::any);
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
    if (p == Precision::kBFloat16 && !spec_.bf16_src) {
      kernel->to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, Desc2D(rows, k_), ctx_->engine,
          Desc2D(rows, k_, dt::bf16)));
    }
  }));
  Kernel* raw = kernel.get();
  kernels_.emplace(rows, std::move(kernel));
  return raw;
}

absl::Status LinearKernels::Prepare(int64_t rows) {
  RETURN_IF_ERROR(Get(rows).status());
  if (spec_.precision == Precision::kBFloat16 && !spec_.bf16_src) {
    AtLeast(&scratch_.bf16, rows * k_);
  } else if (spec_.precision == Precision::kInt8) {
    AtLeast(&scratch_.u8, rows * k_);
    AtLeast(&scratch_.row_scales, rows);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LinearKernels::ImplName(int64_t rows) {
  ASSIGN_OR_RETURN(Kernel * kernel, Get(rows));
  const char* name = nullptr;
  if (dnnl_primitive_desc_query(kernel->matmul.get_primitive_desc(),
                                dnnl_query_impl_info_str, 0,
                                &name) != dnnl_success ||
      name == nullptr) {
    return absl::InternalError("oneDNN did not name the matmul kernel");
  }
  return std::string(name);
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
  if ((spec.bf16_src || spec.bf16_dst) &&
      spec.precision != Precision::kBFloat16) {
    return absl::InvalidArgumentError(
        "Linear: bf16 activations need bf16 precision");
  }
  if (spec.bf16_dst && spec.residual) {
    return absl::InvalidArgumentError(
        "Linear: a residual sum writes f32 (the residual stream)");
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
    // largest magnitude maps to 127 (63 without VNNI: cpu.h says why).
    const float code_max = static_cast<float>(Int8WeightMax());
    quantized.resize(n * k);
    linear->scales_.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      const float max = AbsMax(&weight[r * k], k);
      const float scale = max > 0 ? max / code_max : 1.f;
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
    // PyTorch's (N, K) row-major is the "ba" layout of the (K, N) operand
    // (int8: of the (1, K, N) operand, strides {K·N, 1, K}).
    memory plain =
        int8
            ? memory(memory::desc({1, k, n}, dt::s8, memory::dims{k * n, 1, k}),
                     ctx->engine, quantized.data())
            : memory(memory::desc({k, n}, dt::f32, tag::ba), ctx->engine,
                     const_cast<float*>(weight.data()));
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
  return RunAny(m, false, x, false, y);
}
absl::Status Linear::Run(int64_t m, const bf16_t* x, float* y) {
  return RunAny(m, true, x, false, y);
}
absl::Status Linear::Run(int64_t m, const float* x, bf16_t* y) {
  return RunAny(m, false, x, true, y);
}
absl::Status Linear::Run(int64_t m, const bf16_t* x, bf16_t* y) {
  return RunAny(m, true, x, true, y);
}

absl::Status Linear::RunAny(int64_t m, bool bf16_src, const void* x,
                            bool bf16_dst, void* y) {
  Linear* self = this;
  return RunSameInput(m, bf16_src, x, absl::MakeSpan(&self, 1), bf16_dst,
                      absl::Span<void* const>(&y, 1));
}

template <typename Out>
absl::Status Linear::RunSameInput(int64_t m, bool bf16_src, const void* x,
                                  absl::Span<Linear* const> layers,
                                  bool bf16_dst, absl::Span<Out* const> ys) {
  if (layers.empty() || layers.size() != ys.size()) {
    return absl::InternalError("Linear: one output per layer");
  }
  LinearKernels* kernels = layers[0]->kernels_.get();
  for (Linear* layer : layers) {
    if (layer->kernels_.get() != kernels) {
      return absl::InternalError("Linear: layers on one input share kernels");
    }
  }
  const LinearSpec& spec = kernels->spec();
  if (bf16_src != spec.bf16_src || bf16_dst != spec.bf16_dst) {
    return absl::InternalError(absl::StrFormat(
        "Linear: called with %s → %s activations, built for %s → %s",
        bf16_src ? "bf16" : "f32", bf16_dst ? "bf16" : "f32",
        spec.bf16_src ? "bf16" : "f32", spec.bf16_dst ? "bf16" : "f32"));
  }
  const int64_t rows = RowBucket(m);
  ASSIGN_OR_RETURN(LinearKernels::Kernel * kernel, kernels->Get(rows));
  ASSIGN_OR_RETURN(memory src, kernels->Input(kernel, m, x));
  for (size_t i = 0; i < layers.size(); ++i) {
    RETURN_IF_ERROR(layers[i]->Execute(kernel, rows, src, ys[i]));
  }
  return absl::OkStatus();
}

absl::Status Linear::RunSameInput(int64_t m, const float* x,
                                  absl::Span<Linear* const> layers,
                                  absl::Span<float* const> ys) {
  return RunSameInput(m, false, x, layers, false, ys);
}

absl::Status Linear::RunSameInput(int64_t m, const float* x,
                                  absl::Span<Linear* const> layers,
                                  absl::Span<bf16_t* const> ys) {
  return RunSameInput(m, false, x, layers, true, ys);
}

absl::StatusOr<memory> LinearKernels::Input(Kernel* kernel, int64_t m,
                                            const void* x) {
  const int64_t rows = RowBucket(m);
  memory src;
  if (spec_.precision == Precision::kInt8) {
    // One scale per token (row): its largest |x| maps to 127. A per-call
    // scale over the whole batch would make each sequence's result depend on
    // what it was batched with; per row, answers do not depend on load.
    uint8_t* quantized = AtLeast(&scratch_.u8, rows * k_);
    float* scales = AtLeast(&scratch_.row_scales, rows);
    QuantizeRows(static_cast<const float*>(x), m, rows, k_, quantized, scales);
    RETURN_IF_ERROR(CatchDnnl("int8 input", [&] {
      src = memory(Desc3D(rows, k_, dt::u8), ctx_->engine, quantized);
    }));
    return src;
  }
  RETURN_IF_ERROR(CatchDnnl("matmul input", [&] {
    src = memory(Desc2D(rows, k_, spec_.bf16_src ? dt::bf16 : dt::f32),
                 ctx_->engine, const_cast<void*>(x));
    if (spec_.precision == Precision::kBFloat16 && !spec_.bf16_src) {
      memory converted(Desc2D(rows, k_, dt::bf16), ctx_->engine,
                       AtLeast(&scratch_.bf16, rows * k_));
      kernel->to_bf16.execute(ctx_->stream, src, converted);
      src = converted;
    }
  }));
  return src;
}

absl::Status Linear::Execute(LinearKernels::Kernel* kernel, int64_t rows,
                             const memory& src, void* y) {
  ASSIGN_OR_RETURN(memory weights, WeightsFor(*kernel));
  DnnlContext* ctx = kernels_->ctx();
  const int64_t n = kernels_->n();
  const LinearSpec& spec = kernels_->spec();
  if (spec.precision != Precision::kInt8) {
    return CatchDnnl("matmul", [&] {
      memory dst(Desc2D(rows, n, spec.bf16_dst ? dt::bf16 : dt::f32),
                 ctx->engine, y);
      kernel->matmul.execute(ctx->stream, {{DNNL_ARG_SRC, src},
                                           {DNNL_ARG_WEIGHTS, weights},
                                           {DNNL_ARG_BIAS, bias_mem_},
                                           {DNNL_ARG_DST, dst}});
    });
  }
  // int8: the row scales are those LinearKernels::Input just computed.
  float* scales = kernels_->scratch().row_scales.data();
  return CatchDnnl("int8 matmul", [&] {
    memory dst(Desc3D(rows, n), ctx->engine, y);
    memory row_scales(memory::desc({1, rows, 1}, dt::f32, tag::abc),
                      ctx->engine, scales);
    memory weight_scales(memory::desc({1, 1, n}, dt::f32, tag::abc),
                         ctx->engine, scales_.data());
    memory bias(memory::desc({1, 1, n}, dt::f32, tag::abc), ctx->engine,
                bias_.data());
    kernel->matmul.execute(
        ctx->stream,
        {{DNNL_ARG_SRC, src},
         {DNNL_ARG_WEIGHTS, weights},
         {DNNL_ARG_DST, dst},
         {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, row_scales},
         {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, weight_scales},
         {DNNL_ARG_ATTR_MULTIPLE_POST_OP(2) | DNNL_ARG_SRC_1, bias}});
  });
}

size_t Linear::weight_bytes() const {
  size_t bytes = (bias_.size() + scales_.size()) * sizeof(float);
  for (const memory& m : packed_) bytes += m.get_desc().get_size();
  return bytes;
}

}  // namespace attnserve
