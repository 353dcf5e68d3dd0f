// Fuzz target: config.json text (see fuzz_targets.h).
#include <string>

#include "absl/strings/match.h"
#include "model/checkpoint/config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace attnserve::fuzz {

int Config(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ModelConfig> config = ParseConfig(text, "dir/config.json");
  if (!config.ok()) {
    FUZZ_CHECK(absl::StrContains(config.status().message(), "dir/config.json"));
    return 0;
  }
  const ModelConfig& c = *config;
  for (int v : {c.vocab_size, c.hidden_size, c.num_layers, c.num_heads,
                c.intermediate_size, c.max_position_embeddings,
                c.type_vocab_size}) {
    FUZZ_CHECK(v > 0);
  }
  FUZZ_CHECK(c.pad_token_id >= 0);
  FUZZ_CHECK(c.hidden_size % c.num_heads == 0);
  FUZZ_CHECK(c.head_size() > 0);
  FUZZ_CHECK(c.layer_norm_eps > 0);  // also false for NaN
  // Only the activations attnserve computes exactly are accepted.
  FUZZ_CHECK(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" ||
             c.hidden_act == "gelu_pytorch_tanh" || c.hidden_act == "relu");
  FUZZ_CHECK(c.embedding_size > 0);
  FUZZ_CHECK(c.max_tokens() > 0);
  return 0;
}

}  // namespace attnserve::fuzz
