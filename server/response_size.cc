#include "server/response_size.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace attnserve {
namespace {

// Upper bounds of the encoded size of the small messages, counted in the
// response size with the tensors: a HeadStats is 2 varints and 8 floats
// (≤ 54 bytes with its tags and length); a LayerStats besides its matrix
// holds a varint, a float, a shape and the framing.
constexpr int64_t kHeadStatsBytes = 64;
constexpr int64_t kLayerStatsBytes = 64;

std::string MiB(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

ResponseSize SizeOfResponse(const OutputSpec& spec,
                            const std::vector<InputSequence>& inputs,
                            const ModelConfig& config) {
  ResponseSize size;
  const int64_t hidden = config.hidden_size;
  const int64_t dtype_bytes = spec.attention_dtype == v1::FLOAT16 ? 2 : 4;
  const int64_t layers = spec.attention_layers.size();
  const int64_t heads = spec.attention_heads.size();
  for (const InputSequence& input : inputs) {
    const int64_t t = input.ids.size();
    size.tokens += 5 * t;  // varint ids < 2^31
    for (const std::string& token : input.tokens) {
      size.tokens += token.size() + 3;  // tag, length, bytes
    }
    if (spec.hidden_states) size.hidden += t * hidden * 4;
    if (spec.embedding) size.embedding += hidden * 4;
    const int64_t rows =
        spec.query_positions.empty() ? t : spec.query_positions.size();
    if (spec.attention) size.maps += layers * heads * rows * t * dtype_bytes;
    if (spec.stats) {
      size.stats += layers * heads * kHeadStatsBytes +
                    layers * (heads * heads * 4 + kLayerStatsBytes);
    }
    if (spec.rollout) size.rollout += t * t * 4;
  }
  return size;
}

absl::Status ResponseTooLarge(const ResponseSize& size, const OutputSpec& spec,
                              const RequestLimits& limits) {
  const int64_t bytes = size.total();
  std::vector<std::string> parts;
  auto part = [&](int64_t n, const char* what) {
    if (n > 0) parts.push_back(absl::StrCat(what, " ", n));
  };
  part(size.maps, "attention maps");
  part(size.hidden, "hidden states");
  part(size.rollout, "rollout");
  part(size.stats, "statistics");
  part(size.embedding, "embeddings");
  part(size.tokens, "tokens");
  std::vector<std::string> how;
  if (size.maps > 0) {
    how.push_back(
        "ask for fewer layers (attention.layers), heads (attention.heads) or "
        "query rows (attention.query_positions)");
    if (spec.attention_dtype == v1::FLOAT16) {
      how.back() += " (attention is already FLOAT16)";
    } else {
      how.push_back("set attention.dtype = FLOAT16 (half the map size)");
    }
    if (spec.stats) {
      how.push_back(
          "set attention.omit_maps = true to get only the statistics");
    }
  }
  if (size.hidden > 0) how.push_back("set return_hidden_states = false");
  if (size.rollout > 0) how.push_back("leave out attention.rollout");
  how.push_back("or send fewer or shorter sequences per request");
  return absl::ResourceExhaustedError(absl::StrCat(
      "the response would be ", bytes, " bytes (", MiB(bytes), ": ",
      absl::StrJoin(parts, ", "), "), more than this server's limit of ",
      limits.max_response_bytes, " bytes (", MiB(limits.max_response_bytes),
      ", --max_response_bytes): ", absl::StrJoin(how, ", ")));
}

}  // namespace attnserve
