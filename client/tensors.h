// The response's tensors on the client: v1::Tensor decoded into floats, the
// one-line summaries attnctl prints of them, and the attention page's data
// decoded from a SequenceResult. No I/O, no RPCs.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_CLIENT_TENSORS_H_
#define ATTNSERVE_CLIENT_TENSORS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/attention_html.h"
#include "proto/attnserve.pb.h"

namespace attnserve::client {

// ---- decoding -----------------------------------------------------------

// A decoded v1::Tensor.
struct Array {
  std::string dtype;           // "float32" or "float16" (as sent)
  std::vector<int64_t> shape;  // as sent
  std::vector<float> values;   // row-major, product(shape) values
};

// DATA_LOSS naming `what` when the byte count does not match the shape or
// the dtype is unknown.
absl::StatusOr<Array> DecodeTensor(const v1::Tensor& tensor,
                                   absl::string_view what);

// ---- summaries ----------------------------------------------------------

// "(2, 4, 9, 9)"
std::string ShapeString(const std::vector<int64_t>& shape);

// The first `shown` of n values, "%.4f" each, then "..." if there are more.
std::string FewValues(const float* values, int64_t n, int64_t shown);

// "embedding (128) float32  norm 1.0000  [0.0123 -0.0456 ...]"
std::string FormatEmbedding(const Array& embedding);

// Cosine of two vectors of equal size; NaN when either is all zero.
double Cosine(const std::vector<float>& a, const std::vector<float>& b);

// ---- the HTML page's data -----------------------------------------------

// The page's data from one SequenceResult that has attention maps (all
// query rows), and optionally head_stats, layer_stats and rollout. `layers`
// and `heads` label the map axes (what the request asked for, or 0..n-1 if
// it asked for all); `masked` lists the request's head_mask (head -1 = the
// whole layer).
absl::StatusOr<AttentionPage> PageFromResult(
    const v1::SequenceResult& result, const std::vector<int32_t>& layers,
    const std::vector<int32_t>& heads,
    const std::vector<std::pair<int, int>>& masked);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_TENSORS_H_
