#include "model/checkpoint/config.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "model/checkpoint/families.h"
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
  // No model_type: a BERT config from before transformers wrote one.
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: key \"model_type\" must be a string, got %s", file,
          it->dump()));
    }
    c.model_type = it->get<std::string>();
  }
  ASSIGN_OR_RETURN(const FamilySpec* family,
                   FamilyForModelType(c.model_type, file));
  const ConfigKeys& k = family->keys;
  c.family = family->family;
  c.pad_token_id = family->default_pad_token_id;
  RETURN_IF_ERROR(GetInt(j, file, "vocab_size", true, &c.vocab_size));
  RETURN_IF_ERROR(GetInt(j, file, k.hidden, true, &c.hidden_size));
  RETURN_IF_ERROR(GetInt(j, file, k.layers, true, &c.num_layers));
  RETURN_IF_ERROR(GetInt(j, file, k.heads, true, &c.num_heads));
  RETURN_IF_ERROR(GetInt(j, file, k.intermediate, true, &c.intermediate_size));
  RETURN_IF_ERROR(GetInt(j, file, "max_position_embeddings", true,
                         &c.max_position_embeddings));
  if (k.token_types) {
    RETURN_IF_ERROR(
        GetInt(j, file, "type_vocab_size", false, &c.type_vocab_size));
  } else {
    c.type_vocab_size = 1;  // every token is type 0
    c.has_token_types = false;
  }
  RETURN_IF_ERROR(GetInt(j, file, "pad_token_id", false, &c.pad_token_id));
  c.embedding_size = family->default_embedding_size;
  if (k.embedding_size != nullptr) {
    RETURN_IF_ERROR(
        GetInt(j, file, k.embedding_size, false, &c.embedding_size));
  }
  if (c.embedding_size == 0) c.embedding_size = c.hidden_size;
  if (k.sinusoidal != nullptr) {
    if (auto it = j.find(k.sinusoidal); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: key \"%s\" must be a boolean, got %s", file,
                            k.sinusoidal, it->dump()));
      }
      c.sinusoidal_positions = it->get<bool>();
    }
  }
  if (family->roberta_positions) {
    c.position_offset = c.pad_token_id + 1;
    c.positions_skip_padding = true;
  }
  if (auto it = j.find("layer_norm_eps"); k.layer_norm_eps && it != j.end()) {
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
  if (auto it = j.find(k.activation); it != j.end()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: key \"%s\" must be a string, got %s", file,
                          k.activation, it->dump()));
    }
    c.hidden_act = it->get<std::string>();
  }
  // An activation computed another way would silently give different
  // numbers, so anything else is refused.
  ASSIGN_OR_RETURN(c.activation,
                   ParseActivation(c.hidden_act, file, k.activation));
  if (auto it = j.find("position_embedding_type");
      k.position_embedding_type && it != j.end() && it->is_string() &&
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
       {Positive{"vocab_size", c.vocab_size}, Positive{k.hidden, c.hidden_size},
        Positive{k.layers, c.num_layers}, Positive{k.heads, c.num_heads},
        Positive{k.intermediate, c.intermediate_size},
        Positive{"max_position_embeddings", c.max_position_embeddings},
        Positive{"type_vocab_size", c.type_vocab_size}}) {
    if (p.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: key \"%s\" must be positive", file, p.key));
    }
  }
  if (c.hidden_size % c.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s %d is not divisible by %s %d", file, k.hidden, c.hidden_size,
        k.heads, c.num_heads));
  }
  if (c.max_tokens() < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: max_position_embeddings %d leaves no position after the first "
        "pad_token_id + 1 = %d (%s positions start there)",
        file, c.max_position_embeddings, c.position_offset, family->name));
  }
  if (c.positions_skip_padding &&
      (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: pad_token_id %d is outside the vocab [0, %d)", file,
        c.pad_token_id, c.vocab_size));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadConfig(const std::string& dir) {
  const std::string file = dir + "/config.json";
  ASSIGN_OR_RETURN(const std::string text, ReadFile(file));
  return ParseConfig(text, file);
}

}  // namespace attnserve
