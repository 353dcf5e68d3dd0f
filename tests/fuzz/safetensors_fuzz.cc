// Fuzz target: model.safetensors bytes (see fuzz_targets.h).
#include <string>

#include "absl/strings/match.h"
#include "model/checkpoint/safetensors.h"
#include "model/checkpoint/weights.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/fuzz_util.h"

namespace attnserve::fuzz {
namespace {

// The config the seeds' full checkpoints were written for
// (tests/fuzz/make_seeds.py): small enough that a whole model is ~2 KB.
ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 8;
  c.hidden_size = 4;
  c.num_layers = 1;
  c.num_heads = 2;
  c.intermediate_size = 8;
  c.max_position_embeddings = 8;
  c.type_vocab_size = 2;
  return c;
}

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

int Safetensors(const uint8_t* data, size_t size) {
  static const std::string* path =
      new std::string(ScratchDir() + "/model.safetensors");
  WriteBytes(*path, data, size);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(*path);
  if (!file.ok()) {
    // One message that names the file.
    FUZZ_CHECK(absl::StrContains(file.status().message(), *path));
  } else {
    for (const auto& [name, t] : (*file)->tensors()) {
      FUZZ_CHECK(t.size <= size);
      FUZZ_CHECK(t.data != nullptr || t.size == 0);
      absl::StatusOr<std::vector<float>> values = ToFloat32(t, name);
      if (values.ok()) {
        FUZZ_CHECK(static_cast<int64_t>(values->size()) == Elements(t.shape));
        // Touch every value: ASan sees a read past the mapping.
        float sum = 0;
        for (float v : *values) sum += v;
        (void)sum;
      }
    }
  }

  static const ModelConfig config = TinyConfig();
  absl::StatusOr<BertWeights> weights = LoadWeights(*path, config);
  if (!weights.ok()) {
    FUZZ_CHECK(absl::StrContains(weights.status().message(), *path));
    return 0;
  }
  // Everything the table names is there with its shape.
  const int64_t h = config.hidden_size;
  FUZZ_CHECK(static_cast<int64_t>(weights->word_embeddings.size()) ==
             config.vocab_size * h);
  FUZZ_CHECK(static_cast<int64_t>(weights->layers.size()) ==
             config.num_layers);
  for (const LayerWeights& layer : weights->layers) {
    FUZZ_CHECK(static_cast<int64_t>(layer.qkv_weight.size()) == 3 * h * h);
    FUZZ_CHECK(static_cast<int64_t>(layer.ffn2_weight.size()) ==
               h * config.intermediate_size);
  }
  FUZZ_CHECK(weights->pooler_weight.empty() ==
             weights->pooler_bias.empty());
  return 0;
}

}  // namespace attnserve::fuzz
