// The oneDNN engine and stream of one inference thread, and the helpers that
// keep oneDNN's exceptions behind our Status boundary.
#ifndef ATTNSERVE_MODEL_KERNELS_DNNL_CONTEXT_H_
#define ATTNSERVE_MODEL_KERNELS_DNNL_CONTEXT_H_

#include <string>

#include "absl/status/status.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace attnserve {

// Owned by one thread (see encoder.h); the stream is in-order.
struct DnnlContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

// Runs `fn`, turning a dnnl::error into an Internal status naming `what`.
template <typename Fn>
absl::Status CatchDnnl(const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    return absl::InternalError(std::string("oneDNN ") + what + ": " + e.what());
  }
  return absl::OkStatus();
}

inline dnnl::memory::desc Desc2D(
    int64_t rows, int64_t cols,
    dnnl::memory::data_type dt = dnnl::memory::data_type::f32) {
  return dnnl::memory::desc({rows, cols}, dt, dnnl::memory::format_tag::ab);
}

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_KERNELS_DNNL_CONTEXT_H_
