#include "model/kernels/layer_norm.h"

namespace attnserve {

using dnnl::memory;

dnnl::layer_normalization_forward& LayerNorm::Kernel(int64_t rows) {
  auto it = kernels_.find(rows);
  if (it == kernels_.end()) {
    dnnl::layer_normalization_forward::primitive_desc pd(
        dnnl::layer_normalization_forward::desc(
            dnnl::prop_kind::forward_inference, Desc2D(rows, width_), eps_,
            dnnl::normalization_flags::use_scale |
                dnnl::normalization_flags::use_shift),
        ctx_->engine);
    it = kernels_.emplace(rows, dnnl::layer_normalization_forward(pd)).first;
  }
  return it->second;
}

absl::Status LayerNorm::Prepare(int64_t rows) {
  return CatchDnnl("create layer norm", [&] { Kernel(rows); });
}

absl::Status LayerNorm::Run(int64_t rows, float* x,
                            const std::vector<float>& gamma,
                            const std::vector<float>& beta) {
  return CatchDnnl("layer norm", [&] {
    dnnl::layer_normalization_forward& kernel = Kernel(rows);
    const memory::desc vec({width_}, memory::data_type::f32,
                           memory::format_tag::a);
    memory data(Desc2D(rows, width_), ctx_->engine, x);
    memory scale(vec, ctx_->engine, const_cast<float*>(gamma.data()));
    memory shift(vec, ctx_->engine, const_cast<float*>(beta.data()));
    kernel.execute(ctx_->stream, {{DNNL_ARG_SRC, data},
                                      {DNNL_ARG_DST, data},
                                      {DNNL_ARG_SCALE, scale},
                                      {DNNL_ARG_SHIFT, shift}});
  });
}

}  // namespace attnserve
