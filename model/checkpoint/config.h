// BertConfig as read from a Hugging Face config.json.
#ifndef ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_
#define ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"

namespace attnserve {

struct ModelConfig {
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;  // num_hidden_layers
  int num_heads = 0;   // num_attention_heads
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 2;
  int pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  std::string hidden_act = "gelu";

  int head_size() const { return hidden_size / num_heads; }
};

// Parses and checks `json_text`; `file` names the source in error messages.
absl::StatusOr<ModelConfig> ParseConfig(const std::string& json_text,
                                        const std::string& file);
// Reads `dir`/config.json.
absl::StatusOr<ModelConfig> LoadConfig(const std::string& dir);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_CHECKPOINT_CONFIG_H_
