// Writes a small BERT checkpoint in Hugging Face layout, so the server can be
// tried without PyTorch or a download: the constructed model, whose heads
// have known jobs (constructed_model.h, docs/demo-model.md), or a random one
// of any size for tests.
#ifndef ATTNSERVE_MODEL_DEMO_DEMO_MODEL_H_
#define ATTNSERVE_MODEL_DEMO_DEMO_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/checkpoint/config.h"

namespace attnserve {

enum class DemoModelKind {
  kRandom,       // random weights of the sizes below
  kConstructed,  // constructed_model.h; the sizes below are ignored
};

struct DemoModelOptions {
  // Random by default, so tests that ask for sizes get them; make_demo_model
  // writes the constructed model unless given --random.
  DemoModelKind kind = DemoModelKind::kRandom;
  int hidden_size = 128;
  int num_layers = 4;
  int num_heads = 8;
  int intermediate_size = 512;
  int max_position_embeddings = 128;
  bool with_pooler = true;
  uint32_t seed = 42;
};

// Creates `dir` if needed and writes config.json, model.safetensors (F32) and
// vocab.txt. Random: special tokens, a few hundred common English words,
// letters and ## letters, so any lower-case ASCII text tokenizes without
// [UNK]. Constructed: ~4,500 words (model/demo/words.txt) and pieces.
absl::Status WriteDemoModel(const std::string& dir,
                            const DemoModelOptions& options = {});

// Writes F32 tensors in safetensors layout (names sorted, header padded to a
// multiple of 8). Shared with tests that build corrupt files.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, HostTensor>& tensors);

// config.json text for `config` in Hugging Face's BertConfig form.
std::string ConfigJson(const ModelConfig& config);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_DEMO_DEMO_MODEL_H_
