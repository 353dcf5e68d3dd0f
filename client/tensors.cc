#include "client/tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/half.h"

namespace attnserve::client {

// ---- decoding -----------------------------------------------------------

absl::StatusOr<Array> DecodeTensor(const v1::Tensor& tensor,
                                   absl::string_view what) {
  Array a;
  a.shape.assign(tensor.shape().begin(), tensor.shape().end());
  int64_t n = 1;
  for (int64_t d : a.shape) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d)) {
      return absl::DataLossError(absl::StrCat(
          "bad response: ", what, " has shape ", ShapeString(a.shape)));
    }
    n *= d;
  }
  const std::string& data = tensor.data();
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  int64_t width;
  if (tensor.dtype() == v1::FLOAT16) {
    a.dtype = "float16";
    width = 2;
  } else if (tensor.dtype() == v1::FLOAT32) {
    a.dtype = "float32";
    width = 4;
  } else {
    return absl::DataLossError(absl::StrCat("bad response: ", what,
                                            ": unknown dtype ",
                                            static_cast<int>(tensor.dtype())));
  }
  if (static_cast<int64_t>(data.size()) != width * n) {
    return absl::DataLossError(absl::StrCat(
        "bad response: ", what, ": ", data.size(), " bytes for ", n, " ",
        a.dtype, " values of shape ", ShapeString(a.shape)));
  }
  a.values.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    if (width == 2) {
      a.values[i] = HalfToFloat(static_cast<uint16_t>(
          bytes[2 * i] | (static_cast<uint16_t>(bytes[2 * i + 1]) << 8)));
    } else {
      const uint32_t u = bytes[4 * i] | (uint32_t{bytes[4 * i + 1]} << 8) |
                         (uint32_t{bytes[4 * i + 2]} << 16) |
                         (uint32_t{bytes[4 * i + 3]} << 24);
      std::memcpy(&a.values[i], &u, 4);
    }
  }
  return a;
}

// ---- summaries ----------------------------------------------------------

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

std::string FewValues(const float* values, int64_t n, int64_t shown) {
  std::vector<std::string> parts;
  for (int64_t i = 0; i < std::min(n, shown); ++i) {
    parts.push_back(absl::StrFormat("%.4f", values[i]));
  }
  if (n > shown) parts.push_back("...");
  return absl::StrJoin(parts, " ");
}

std::string FormatEmbedding(const Array& embedding) {
  double norm = 0;
  for (float v : embedding.values) norm += static_cast<double>(v) * v;
  return absl::StrFormat(
      "embedding %s %s  norm %.4f  [%s]", ShapeString(embedding.shape),
      embedding.dtype, std::sqrt(norm),
      FewValues(embedding.values.data(), embedding.values.size(), 6));
}

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::nan("");
  double dot = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 || bb == 0) return std::nan("");
  return dot / std::sqrt(aa * bb);
}

// ---- the HTML page's data -----------------------------------------------

absl::StatusOr<AttentionPage> PageFromResult(
    const v1::SequenceResult& result, const std::vector<int32_t>& layers,
    const std::vector<int32_t>& heads,
    const std::vector<std::pair<int, int>>& masked) {
  if (!result.has_attention()) {
    return absl::DataLossError("bad response: no attention maps");
  }
  absl::StatusOr<Array> maps = DecodeTensor(result.attention(), "attention");
  if (!maps.ok()) return maps.status();
  if (maps->shape.size() != 4 || maps->shape[2] != maps->shape[3]) {
    return absl::DataLossError(absl::StrCat(
        "bad response: attention has shape ", ShapeString(maps->shape),
        "; the picture needs (layers, heads, T, T) with every query row"));
  }
  const int64_t t = maps->shape[3];
  AttentionPage page;
  if (result.tokens_size() == t) {
    page.tokens.assign(result.tokens().begin(), result.tokens().end());
  } else if (result.token_ids_size() == t) {
    for (int32_t id : result.token_ids())
      page.tokens.push_back(absl::StrCat(id));
  } else {
    for (int64_t i = 0; i < t; ++i) page.tokens.push_back(absl::StrCat("#", i));
  }
  if (static_cast<int64_t>(layers.size()) != maps->shape[0] ||
      static_cast<int64_t>(heads.size()) != maps->shape[1]) {
    return absl::DataLossError(absl::StrCat(
        "bad response: attention has shape ", ShapeString(maps->shape), " for ",
        layers.size(), " layers and ", heads.size(), " heads"));
  }
  page.layers.assign(layers.begin(), layers.end());
  page.heads.assign(heads.begin(), heads.end());
  page.attention = std::move(maps->values);
  for (const v1::HeadStats& s : result.head_stats()) {
    page.head_stats.push_back({s.layer(), s.head(), s.entropy(), s.max_weight(),
                               s.mean_distance(), s.cls_weight(),
                               s.sep_weight(), s.self_weight(), s.prev_weight(),
                               s.next_weight()});
  }
  for (const v1::LayerStats& s : result.layer_stats()) {
    LayerSummary summary{s.layer(), s.diversity(), {}};
    if (s.has_js_divergence()) {
      absl::StatusOr<Array> js =
          DecodeTensor(s.js_divergence(), "js_divergence");
      if (!js.ok()) return js.status();
      if (js->values.size() == heads.size() * heads.size()) {
        summary.js_divergence = std::move(js->values);
      }
    }
    page.layer_stats.push_back(std::move(summary));
  }
  if (result.has_rollout()) {
    absl::StatusOr<Array> rollout = DecodeTensor(result.rollout(), "rollout");
    if (!rollout.ok()) return rollout.status();
    if (static_cast<int64_t>(rollout->values.size()) != t * t) {
      return absl::DataLossError(
          absl::StrCat("bad response: rollout has shape ",
                       ShapeString(rollout->shape), " for ", t, " tokens"));
    }
    page.rollout = std::move(rollout->values);
  }
  page.masked = masked;
  return page;
}

}  // namespace attnserve::client
