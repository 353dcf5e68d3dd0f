#include "model/linear.h"

#include "absl/strings/str_format.h"
#include "model/status_macros.h"

namespace attnserve {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dt WeightType(Precision p) {
  return p == Precision::kBFloat16 ? dt::bf16 : dt::f32;
}

// The row count the weights are packed for: the layout oneDNN picks can
// depend on M, and most rows are served from large batches.
constexpr int64_t kPackRows = 256;

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
  std::vector<uint16_t> src;  // (rows, K) bf16 scratch
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
  if (spec.precision == Precision::kInt8) {
    return absl::UnimplementedError("int8 precision is not implemented yet");
  }
  std::unique_ptr<Linear> linear(new Linear(ctx, n, k, spec));
  linear->weight_ = weight;
  linear->bias_ = bias;
  RETURN_IF_ERROR(CatchDnnl("Linear::Create", [&] {
    linear->bias_mem_ =
        memory(memory::desc({1, n}, dt::f32, tag::ab), ctx->engine,
               linear->bias_.data());
  }));
  ASSIGN_OR_RETURN(Kernel * kernel, linear->GetKernel(kPackRows));
  (void)kernel;
  linear->weight_.clear();
  linear->weight_.shrink_to_fit();
  return linear;
}

absl::Status Linear::PackWeights(const memory::desc& want) {
  return CatchDnnl("pack weights", [&] {
    // PyTorch's (N, K) row-major is the "ba" layout of the (K, N) operand.
    memory plain(memory::desc({k_, n_}, dt::f32, tag::ba), ctx_->engine,
                 weight_.data());
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
  const dt src_type = WeightType(spec_.precision);
  absl::Status status = CatchDnnl("create matmul", [&] {
    dnnl::post_ops ops;
    if (spec_.gelu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    if (spec_.residual) ops.append_sum(1.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const memory::desc src = Desc2D(rows, k_, src_type);
    const memory::desc dst = Desc2D(rows, n_);
    const memory::desc bias({1, n_}, dt::f32, tag::ab);
    // Reuse the packed layout when oneDNN accepts it for this row count;
    // otherwise let it choose and repack (checked by desc equality).
    auto make = [&](const memory::desc& wei) {
      return dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(src, wei, bias, dst), attr, ctx_->engine);
    };
    dnnl::matmul::primitive_desc pd;
    if (weight_mem_) {
      try {
        pd = make(weight_mem_.get_desc());
      } catch (const dnnl::error&) {
        pd = make(memory::desc({k_, n_}, src_type, tag::any));
      }
    } else {
      pd = make(memory::desc({k_, n_}, src_type, tag::any));
    }
    kernel->matmul = dnnl::matmul(pd);
    kernel->weight_desc = pd.weights_desc();
    if (src_type != dt::f32) {
      kernel->src.resize(rows * k_);
      kernel->to_src = dnnl::reorder(
          dnnl::reorder::primitive_desc(ctx_->engine, Desc2D(rows, k_),
                                        ctx_->engine, src));
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
  return CatchDnnl("matmul", [&] {
    memory src_f32(Desc2D(rows, k_), ctx_->engine, const_cast<float*>(x));
    memory dst(Desc2D(rows, n_), ctx_->engine, y);
    memory src = src_f32;
    if (!kernel->src.empty()) {
      src = memory(Desc2D(rows, k_, WeightType(spec_.precision)), ctx_->engine,
                   kernel->src.data());
      kernel->to_src.execute(ctx_->stream, src_f32, src);
    }
    kernel->matmul.execute(ctx_->stream, {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_WEIGHTS, kernel->weight},
                                          {DNNL_ARG_BIAS, bias_mem_},
                                          {DNNL_ARG_DST, dst}});
  });
}

size_t Linear::weight_bytes() const {
  size_t bytes = bias_.size() * sizeof(float);
  if (weight_mem_) bytes += weight_mem_.get_desc().get_size();
  for (const auto& [rows, kernel] : kernels_) {
    if (kernel->weight && kernel->weight.get() != weight_mem_.get()) {
      bytes += kernel->weight_desc.get_size();
    }
  }
  return bytes;
}

}  // namespace attnserve
