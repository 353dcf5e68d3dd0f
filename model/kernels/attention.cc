#include "model/kernels/attention.h"

#include <cmath>

#include "common/status_macros.h"

namespace attnserve {

using dnnl::memory;
using dt = dnnl::memory::data_type;

namespace {
// Grows `v` to at least n elements; never shrinks.
void Grow(std::vector<uint16_t>* v, int64_t n) {
  if (static_cast<int64_t>(v->size()) < n) v->resize(n);
}
}  // namespace

struct Attention::Kernel {
  memory::desc q, kt, v, scores, out;
  dnnl::matmul score_mm;  // (n·heads, t, d) × (n·heads, d, t)
  dnnl::softmax_forward softmax;
  dnnl::matmul context_mm;  // (n·heads, t, t) × (n·heads, t, d)
  // bf16 only: f32 → bf16 copies of QKV (as one flat vector) and of probs.
  memory::desc qkv_f32, qkv_bf16, probs_bf16;
  dnnl::reorder qkv_to_bf16, probs_to_bf16;
};

Attention::Attention(DnnlContext* ctx, int heads, int head_size, bool bf16)
    : ctx_(ctx), heads_(heads), head_size_(head_size), bf16_(bf16) {}
Attention::~Attention() = default;

absl::Status Attention::Create(int64_t n, int64_t t, Kernel* k) {
  return CatchDnnl("create attention", [&] {
    const int64_t h = heads_, d = head_size_, hd = h * d;
    const dt in = bf16_ ? dt::bf16 : dt::f32;  // what the matmuls read
    // 4-D views (n, heads, rows, cols) with explicit strides into the fused
    // (n, t, 3, heads, d) buffer (or its bf16 copy): no copies to split heads.
    k->q = memory::desc({n, h, t, d}, in, {t * 3 * hd, d, 3 * hd, 1});
    k->kt = memory::desc({n, h, d, t}, in, {t * 3 * hd, d, 1, 3 * hd});
    k->v = memory::desc({n, h, t, d}, in, {t * 3 * hd, d, 3 * hd, 1});
    k->scores = memory::desc({n, h, t, t}, dt::f32, memory::format_tag::abcd);
    if (bf16_) {
      k->qkv_f32 =
          memory::desc({n * t * 3 * hd}, dt::f32, memory::format_tag::a);
      k->qkv_bf16 =
          memory::desc({n * t * 3 * hd}, dt::bf16, memory::format_tag::a);
      k->probs_bf16 =
          memory::desc({n, h, t, t}, dt::bf16, memory::format_tag::abcd);
      k->qkv_to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, k->qkv_f32, ctx_->engine, k->qkv_bf16));
      k->probs_to_bf16 = dnnl::reorder(dnnl::reorder::primitive_desc(
          ctx_->engine, k->scores, ctx_->engine, k->probs_bf16));
    }
    // Heads merged back into (n, t, heads·d) by destination strides.
    k->out = memory::desc({n, h, t, d}, dt::f32, {t * hd, d, hd, 1});

    dnnl::primitive_attr scale;
    scale.set_output_scales(0, {1.f / std::sqrt(static_cast<float>(d))});
    k->score_mm = dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(k->q, k->kt, k->scores), scale, ctx_->engine));
    k->softmax = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference,
                                    k->scores, 3),
        ctx_->engine));
    k->context_mm = dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(bf16_ ? k->probs_bf16 : k->scores, k->v, k->out),
        ctx_->engine));
  });
}

absl::Status Attention::Run(int64_t n, int64_t t, const float* qkv,
                            float* probs, float* out) {
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
  Kernel& k = *it->second.kernel;
  const int64_t hd = int64_t{heads_} * head_size_;
  if (bf16_) {
    Grow(&qkv_bf16_, n * t * 3 * hd);
    Grow(&probs_bf16_, n * heads_ * t * t);
  }
  return CatchDnnl("attention", [&] {
    // The matmuls read the f32 buffer itself, or its bf16 copy.
    void* base = const_cast<float*>(qkv);
    const size_t elem = bf16_ ? sizeof(uint16_t) : sizeof(float);
    if (bf16_) {
      memory src(k.qkv_f32, ctx_->engine, base);
      memory dst(k.qkv_bf16, ctx_->engine, qkv_bf16_.data());
      k.qkv_to_bf16.execute(ctx_->stream, src, dst);
      base = qkv_bf16_.data();
    }
    auto at = [&](int64_t offset) {
      return static_cast<char*>(base) + offset * elem;
    };
    memory q(k.q, ctx_->engine, at(0));
    memory kt(k.kt, ctx_->engine, at(hd));
    memory v(k.v, ctx_->engine, at(2 * hd));
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
