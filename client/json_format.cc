#include "client/json_format.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"

namespace attnserve::client {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

namespace {

// Values nested by shape: [[...], [...]].
void JsonNested(const Array& a, size_t dim, int64_t offset, std::string* out) {
  if (dim == a.shape.size()) {
    *out += JsonNumber(a.values[offset]);
    return;
  }
  int64_t stride = 1;
  for (size_t d = dim + 1; d < a.shape.size(); ++d) stride *= a.shape[d];
  *out += "[";
  for (int64_t i = 0; i < a.shape[dim]; ++i) {
    if (i > 0) *out += ",";
    JsonNested(a, dim + 1, offset + i * stride, out);
  }
  *out += "]";
}

}  // namespace

std::string JsonTensor(const Array& a) {
  std::string out =
      absl::StrCat("{\"dtype\": ", JsonString(a.dtype), ", \"shape\": [",
                   absl::StrJoin(a.shape, ", "), "], \"values\": ");
  JsonNested(a, 0, 0, &out);
  return out + "}";
}

absl::StatusOr<std::string> EncodeResponseJson(
    const v1::EncodeResponse& response) {
  std::string out = absl::StrCat("{\"model\": ", JsonString(response.model()),
                                 ", \"results\": [");
  for (int s = 0; s < response.results_size(); ++s) {
    const v1::SequenceResult& r = response.results(s);
    out += s > 0 ? ",\n  {" : "\n  {";
    std::vector<std::string> fields;
    if (r.token_ids_size() > 0) {
      fields.push_back(absl::StrCat("\"token_ids\": [",
                                    absl::StrJoin(r.token_ids(), ", "), "]"));
    }
    if (r.tokens_size() > 0) {
      std::vector<std::string> tokens;
      for (const std::string& t : r.tokens()) tokens.push_back(JsonString(t));
      fields.push_back(
          absl::StrCat("\"tokens\": [", absl::StrJoin(tokens, ", "), "]"));
    }
    const std::pair<const char*, const v1::Tensor*> tensors[] = {
        {"embedding", r.has_embedding() ? &r.embedding() : nullptr},
        {"hidden_states", r.has_hidden_states() ? &r.hidden_states() : nullptr},
        {"attention", r.has_attention() ? &r.attention() : nullptr},
        {"rollout", r.has_rollout() ? &r.rollout() : nullptr}};
    for (const auto& [name, tensor] : tensors) {
      if (tensor == nullptr) continue;
      absl::StatusOr<Array> a = DecodeTensor(*tensor, name);
      if (!a.ok()) return a.status();
      fields.push_back(absl::StrCat("\"", name, "\": ", JsonTensor(*a)));
    }
    if (r.head_stats_size() > 0) {
      std::vector<std::string> stats;
      for (const v1::HeadStats& h : r.head_stats()) {
        stats.push_back(JsonMessage(h));
      }
      fields.push_back(absl::StrCat("\"head_stats\": [",
                                    absl::StrJoin(stats, ",\n    "), "]"));
    }
    if (r.layer_stats_size() > 0) {
      std::vector<std::string> stats;
      for (const v1::LayerStats& l : r.layer_stats()) {
        absl::StatusOr<Array> js = DecodeTensor(l.js_divergence(), "js");
        if (!js.ok()) return js.status();
        stats.push_back(
            absl::StrCat("{\"layer\": ", l.layer(),
                         ", \"diversity\": ", JsonNumber(l.diversity()),
                         ", \"js_divergence\": ", JsonTensor(*js), "}"));
      }
      fields.push_back(absl::StrCat("\"layer_stats\": [",
                                    absl::StrJoin(stats, ",\n    "), "]"));
    }
    out += absl::StrJoin(fields, ",\n   ");
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

std::string JsonMessage(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "null";
  }
  return out;
}

}  // namespace attnserve::client
