#include "model/kernels/attention.h"

#include <cmath>

#include "common/status_macros.h"

namespace attnserve {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {
// Grows `v` to at least n elements; never shrinks.
template <typename T>
T* AtLeast(std::vector<T>* v, int64_t n) {
  if (static_cast<int64_t>(v->size()) < n) v->resize(n);
  return v->data();
}
}  // namespace

struct Attention::Kernel {
  // (n, heads, t, d), (n, heads, d, t), (n, heads, t, d) over the
  // (n, t, heads·d) buffers of Q, K and V; the context likewise.
  memory::desc q, kt, v, out;
  memory::desc scores;    // (n, heads, t, t) f32
  dnnl::matmul score_mm;  // (n·heads, t, d) × (n·heads, d, t)
  dnnl::softmax_forward softmax;
  dnnl::matmul context_mm;  // (n·heads, t, t) × (n·heads, t, d)
  memory::desc probs_bf16;  // bf16 only: the copy P·V reads
  dnnl::reorder probs_to_bf16;
};

Attention::Attention(DnnlContext* ctx, int heads, int head_size, bool bf16)
    : ctx_(ctx), heads_(heads), head_size_(head_size), bf16_(bf16) {}
Attention::~Attention() = default;

absl::Status Attention::Create(int64_t n, int64_t t, Kernel* k) {
  return CatchDnnl("create attention", [&] {
    const int64_t h = heads_, d = head_size_;
    const dt io = bf16_ ? dt::bf16 : dt::f32;  // Q, K, V, the context
    k->q = memory::desc({n, h, t, d}, io, tag::acbd);
    k->kt = memory::desc({n, h, d, t}, io, tag::adbc);
    k->v = k->q;
    k->out = k->q;
    k->scores = memory::desc({n, h, t, t}, dt::f32, tag::abcd);

    dnnl::primitive_attr scale;
    scale.set_output_scales(0, {1.f / std::sqrt(static_cast<float>(d))});
    k->score_mm = dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(k->q, k->kt, k->scores), scale, ctx_->engine));
    k->softmax = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference,
                                    k->scores, 3),
        ctx_->engine));
    memory::desc p = k->scores;
    if (bf16_) {
      k->probs_bf16 = memory::desc({n, h, t, t}, dt::bf16, tag::abcd);
      k->probs_to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, k->scores, ctx_->engine, k->probs_bf16));
      p = k->probs_bf16;
    }
    k->context_mm = dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(p, k->v, k->out), ctx_->engine));
  });
}

absl::StatusOr<Attention::Kernel*> Attention::Get(int64_t n, int64_t t) {
  auto it = kernels_.find({n, t});
  if (it == kernels_.end()) {
    if (kernels_.size() >= kMaxKernels) {
      auto oldest = kernels_.begin();
      for (auto c = kernels_.begin(); c != kernels_.end(); ++c) {
        if (c->second.last_used < oldest->second.last_used) oldest = c;
      }
      kernels_.erase(oldest);
    }
    auto kernel = std::make_unique<Kernel>();
    RETURN_IF_ERROR(Create(n, t, kernel.get()));
    it = kernels_.emplace(std::make_pair(n, t), Cached{std::move(kernel), 0})
             .first;
  }
  it->second.last_used = ++clock_;
  return it->second.kernel.get();
}

absl::StatusOr<std::string> Attention::ImplNames(int64_t n, int64_t t) {
  ASSIGN_OR_RETURN(Kernel * k, Get(n, t));
  std::string names;
  for (const dnnl::primitive* p : {&k->score_mm, &k->context_mm}) {
    const char* name = nullptr;
    if (dnnl_primitive_desc_query(p->get_primitive_desc(),
                                  dnnl_query_impl_info_str, 0,
                                  &name) != dnnl_success ||
        name == nullptr) {
      return absl::InternalError("oneDNN did not name an attention kernel");
    }
    names += names.empty() ? name : std::string(" / ") + name;
  }
  return names;
}

absl::Status Attention::Run(int64_t n, int64_t t, const float* q,
                            const float* k, const float* v, float* probs,
                            float* out) {
  if (bf16_) return absl::InternalError("bf16 attention given f32 buffers");
  return RunAny(n, t, q, k, v, probs, out);
}

absl::Status Attention::Run(int64_t n, int64_t t, const bf16_t* q,
                            const bf16_t* k, const bf16_t* v, float* probs,
                            bf16_t* out) {
  if (!bf16_) return absl::InternalError("f32 attention given bf16 buffers");
  return RunAny(n, t, q, k, v, probs, out);
}

absl::Status Attention::RunAny(int64_t n, int64_t t, const void* q,
                               const void* k, const void* v, float* probs,
                               void* out) {
  ASSIGN_OR_RETURN(Kernel * kernel, Get(n, t));
  const Kernel& kn = *kernel;
  if (bf16_) AtLeast(&probs_bf16_, n * heads_ * t * t);
  return CatchDnnl("attention", [&] {
    memory qm(kn.q, ctx_->engine, const_cast<void*>(q));
    memory ktm(kn.kt, ctx_->engine, const_cast<void*>(k));
    memory vm(kn.v, ctx_->engine, const_cast<void*>(v));
    memory scores(kn.scores, ctx_->engine, probs);
    memory o(kn.out, ctx_->engine, out);
    kn.score_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, ktm}, {DNNL_ARG_DST, scores}});
    kn.softmax.execute(ctx_->stream,
                       {{DNNL_ARG_SRC, scores}, {DNNL_ARG_DST, scores}});
    memory p = scores;
    if (bf16_) {
      p = memory(kn.probs_bf16, ctx_->engine, probs_bf16_.data());
      kn.probs_to_bf16.execute(ctx_->stream, scores, p);
    }
    kn.context_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, p}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, o}});
  });
}

}  // namespace attnserve
