#include "model/kernels/attention.h"

#include <cmath>

#include "common/status_macros.h"

namespace attnserve {

using dnnl::memory;
using dt = dnnl::memory::data_type;

struct Attention::Kernel {
  memory::desc q, kt, v, scores, out;
  dnnl::matmul score_mm;  // (n·heads, t, d) × (n·heads, d, t)
  dnnl::softmax_forward softmax;
  dnnl::matmul context_mm;  // (n·heads, t, t) × (n·heads, t, d)
};

Attention::Attention(DnnlContext* ctx, int heads, int head_size)
    : ctx_(ctx), heads_(heads), head_size_(head_size) {}
Attention::~Attention() = default;

absl::Status Attention::Create(int64_t n, int64_t t, Kernel* k) {
  return CatchDnnl("create attention", [&] {
    const int64_t h = heads_, d = head_size_, hd = h * d;
    // 4-D views (n, heads, rows, cols) with explicit strides into the fused
    // (n, t, 3, heads, d) buffer: no copies to split heads.
    k->q = memory::desc({n, h, t, d}, dt::f32, {t * 3 * hd, d, 3 * hd, 1});
    k->kt = memory::desc({n, h, d, t}, dt::f32, {t * 3 * hd, d, 1, 3 * hd});
    k->v = memory::desc({n, h, t, d}, dt::f32, {t * 3 * hd, d, 3 * hd, 1});
    k->scores = memory::desc({n, h, t, t}, dt::f32, memory::format_tag::abcd);
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
        dnnl::matmul::desc(k->scores, k->v, k->out), ctx_->engine));
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
  float* base = const_cast<float*>(qkv);
  return CatchDnnl("attention", [&] {
    memory q(k.q, ctx_->engine, base);
    memory kt(k.kt, ctx_->engine, base + hd);
    memory v(k.v, ctx_->engine, base + 2 * hd);
    memory scores(k.scores, ctx_->engine, probs);
    memory o(k.out, ctx_->engine, out);
    k.score_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, scores}});
    k.softmax.execute(ctx_->stream,
                      {{DNNL_ARG_SRC, scores}, {DNNL_ARG_DST, scores}});
    k.context_mm.execute(
        ctx_->stream,
        {{DNNL_ARG_SRC, scores}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, o}});
  });
}

}  // namespace attnserve
