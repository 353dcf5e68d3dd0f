#include "model/checkpoint/config.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

using Json = nlohmann::json;

absl::Status GetInt(const Json& j, const std::string& file, const char* key,
                    bool required, int* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: missing key \"%s\"", file, key));
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: key \"%s\" must be a non-negative integer, got %s",
                        file, key, it->dump()));
  }
  *out = it->get<int>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseConfig(const std::string& json_text,
                                        const std::string& file) {
  Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a JSON object"));
  }
  ModelConfig c;
  RETURN_IF_ERROR(GetInt(j, file, "vocab_size", true, &c.vocab_size));
  RETURN_IF_ERROR(GetInt(j, file, "hidden_size", true, &c.hidden_size));
  RETURN_IF_ERROR(GetInt(j, file, "num_hidden_layers", true, &c.num_layers));
  RETURN_IF_ERROR(GetInt(j, file, "num_attention_heads", true, &c.num_heads));
  RETURN_IF_ERROR(
      GetInt(j, file, "intermediate_size", true, &c.intermediate_size));
  RETURN_IF_ERROR(GetInt(j, file, "max_position_embeddings", true,
                         &c.max_position_embeddings));
  RETURN_IF_ERROR(
      GetInt(j, file, "type_vocab_size", false, &c.type_vocab_size));
  RETURN_IF_ERROR(GetInt(j, file, "pad_token_id", false, &c.pad_token_id));
  if (auto it = j.find("layer_norm_eps"); it != j.end()) {
    // Checked as a float: 1e300 would become inf and 1e-50 zero.
    if (!it->is_number() || !(it->get<double>() > 0) ||
        it->get<double>() > std::numeric_limits<float>::max() ||
        !(static_cast<float>(it->get<double>()) > 0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: key \"layer_norm_eps\" must be a positive float, got %s", file,
          it->dump()));
    }
    c.layer_norm_eps = it->get<float>();
  }
  if (auto it = j.find("hidden_act"); it != j.end()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: key \"hidden_act\" must be a string, got %s", file, it->dump()));
    }
    c.hidden_act = it->get<std::string>();
  }
  // Only erf GELU is implemented: "gelu_new"/"relu" would silently give
  // different numbers, so they are refused.
  if (c.hidden_act != "gelu") {
    return absl::UnimplementedError(absl::StrFormat(
        "%s: hidden_act \"%s\" is not supported (only \"gelu\")", file,
        c.hidden_act));
  }
  if (auto it = j.find("position_embedding_type");
      it != j.end() && it->is_string() &&
      it->get<std::string>() != "absolute") {
    return absl::UnimplementedError(absl::StrFormat(
        "%s: position_embedding_type \"%s\" is not supported (only "
        "\"absolute\")",
        file, it->get<std::string>()));
  }
  struct Positive {
    const char* key;
    int value;
  };
  for (const Positive& p :
       {Positive{"vocab_size", c.vocab_size},
        Positive{"hidden_size", c.hidden_size},
        Positive{"num_hidden_layers", c.num_layers},
        Positive{"num_attention_heads", c.num_heads},
        Positive{"intermediate_size", c.intermediate_size},
        Positive{"max_position_embeddings", c.max_position_embeddings},
        Positive{"type_vocab_size", c.type_vocab_size}}) {
    if (p.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: key \"%s\" must be positive", file, p.key));
    }
  }
  if (c.hidden_size % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: hidden_size %d is not divisible by num_attention_heads %d", file,
        c.hidden_size, c.num_heads));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadConfig(const std::string& dir) {
  const std::string file = dir + "/config.json";
  ASSIGN_OR_RETURN(const std::string text, ReadFile(file));
  return ParseConfig(text, file);
}

}  // namespace attnserve
