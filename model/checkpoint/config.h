// An encoder's config as read from a Hugging Face config.json. The family
// (config.json's model_type) decides which keys are read: see families.h.
#ifndef ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_
#define ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/types.h"

namespace attnserve {

// The encoder families: one weight table and one set of config keys each
// (model/checkpoint/families.cc).
enum class ModelFamily { kBert, kRoberta, kDistilBert, kElectra };

struct ModelConfig {
  ModelFamily family = ModelFamily::kBert;
  std::string model_type = "bert";  // as config.json says (e.g. xlm-roberta)
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;  // num_hidden_layers
  int num_heads = 0;   // num_attention_heads
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 2;
  int pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  std::string hidden_act = "gelu";  // as written (DistilBERT: "activation")
  Activation activation = Activation::kGeluErf;
  int embedding_size = 0;  // ELECTRA's embedding width; = hidden_size elsewhere
  // RoBERTa: positions start at pad_token_id + 1 and count only non-padding
  // tokens, so position_offset = pad_token_id + 1. 0 for the others.
  int position_offset = 0;
  bool positions_skip_padding = false;  // RoBERTa's count of non-pad tokens
  bool sinusoidal_positions = false;    // DistilBERT's sinusoidal_pos_embds
  bool has_token_types = true;          // DistilBERT has none

  int head_size() const { return hidden_size / num_heads; }
  // The longest input: max_position_embeddings − position_offset.
  int max_tokens() const { return max_position_embeddings - position_offset; }
};

// "bert", "roberta", "distilbert", "electra".
const char* FamilyName(ModelFamily family);

// Parses and checks `json_text`; `file` names the source in error messages.
absl::StatusOr<ModelConfig> ParseConfig(const std::string& json_text,
                                        const std::string& file);
// Reads `dir`/config.json.
absl::StatusOr<ModelConfig> LoadConfig(const std::string& dir);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_
