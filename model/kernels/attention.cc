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
  // bf16 only: (3, n, heads, t, d) view of the (n, t, 3, heads, d) input, and
  // its dense copy.
  memory::desc fused, split;
  dnnl::reorder split_heads;
  // (n, heads, t, d), (n, heads, d, t), (n, heads, t, d): in the dense copy
  // (bf16) or strided views of the input (f32).
  memory::desc q, kt, v;
  memory::desc scores;    // (n, heads, t, t) f32
  memory::desc out;       // (n, heads, t, d) over (n, t, heads·d)
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
    const int64_t h = heads_, d = head_size_, hd = h * d;
    const dt io = bf16_ ? dt::bf16 : dt::f32;  // QKV, the matmuls, the context
    if (bf16_) {
      k->fused =
          memory::desc({3, n, h, t, d}, io, {hd, t * 3 * hd, d, 3 * hd, 1});
      k->split = memory::desc({3, n, h, t, d}, io, tag::abcde);
      k->split_heads = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, k->fused, ctx_->engine, k->split));
      // Q, K and V one after another in the copy; Kᵀ is K read "abdc".
      k->q = memory::desc({n, h, t, d}, io, tag::abcd);
      k->kt = memory::desc({n, h, d, t}, io, tag::abdc);
      k->v = k->q;
    } else {
      // Strided views into the fused buffer (offsets 0, hd, 2·hd).
      k->q = memory::desc({n, h, t, d}, io, {t * 3 * hd, d, 3 * hd, 1});
      k->kt = memory::desc({n, h, d, t}, io, {t * 3 * hd, d, 1, 3 * hd});
      k->v = k->q;
    }
    k->scores = memory::desc({n, h, t, t}, dt::f32, tag::abcd);
    k->out = memory::desc({n, h, t, d}, io, {t * hd, d, hd, 1});

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

absl::Status Attention::Run(int64_t n, int64_t t, const float* qkv,
                            float* probs, float* out) {
  if (bf16_) return absl::InternalError("bf16 attention given f32 buffers");
  return RunAny(n, t, qkv, probs, out);
}

absl::Status Attention::Run(int64_t n, int64_t t, const bf16_t* qkv,
                            float* probs, bf16_t* out) {
  if (!bf16_) return absl::InternalError("f32 attention given bf16 buffers");
  return RunAny(n, t, qkv, probs, out);
}

absl::Status Attention::RunAny(int64_t n, int64_t t, const void* qkv,
                               float* probs, void* out) {
  ASSIGN_OR_RETURN(Kernel * kernel, Get(n, t));
  const Kernel& k = *kernel;
  const int64_t hd = int64_t{heads_} * head_size_;
  // Where Q, K and V start: in the dense copy (bf16: blocks of n·t·hd) or
  // in the fused input (f32: hd apart within each token's row).
  char* base = static_cast<char*>(const_cast<void*>(qkv));
  int64_t step = hd * sizeof(float);
  if (bf16_) {
    const int64_t block = n * t * hd;  // bf16 values of one of Q, K, V
    base = reinterpret_cast<char*>(AtLeast(&split_, 3 * block));
    step = block * sizeof(bf16_t);
    AtLeast(&probs_bf16_, n * heads_ * t * t);
  }
  return CatchDnnl("attention", [&] {
    if (bf16_) {
      memory fused(k.fused, ctx_->engine, const_cast<void*>(qkv));
      memory dense(k.split, ctx_->engine, base);
      k.split_heads.execute(ctx_->stream, fused, dense);
    }
    memory q(k.q, ctx_->engine, base);
    memory kt(k.kt, ctx_->engine, base + step);
    memory v(k.v, ctx_->engine, base + 2 * step);
    memory scores(k.scores, ctx_->engine, probs);
    memory o(k.out, ctx_->engine, out);
    k.score_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, scores}});
    k.softmax.execute(ctx_->stream,
                      {{DNNL_ARG_SRC, scores}, {DNNL_ARG_DST, scores}});
    memory p = scores;
    if (bf16_) {
      p = memory(k.probs_bf16, ctx_->engine, probs_bf16_.data());
      k.probs_to_bf16.execute(ctx_->stream, scores, p);
    }
    k.context_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, p}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, o}});
  });
}

}  // namespace attnserve
