// The encoder families attnserve loads, as data: per family, the config.json
// keys it reads and the one table of tensor names and shapes its checkpoints
// hold. The config parser and the weight loader each visit these tables; no
// other file names a tensor or branches on the family to find one.
//
//   family      model_type                        tensors (prefix optional)
//   bert        bert                              bert.   embeddings, encoder.layer.N, pooler
//   roberta     roberta, xlm-roberta, camembert   roberta. the same names as BERT
//   distilbert  distilbert                        distilbert. transformer.layer.N.{q,k,v,out}_lin...
//   electra     electra                           electra. BERT's, embeddings at embedding_size,
//                                                          embeddings_project when E != H
//
// Threads: everything here is immutable after first use.
#ifndef ATTNSERVE_MODEL_CHECKPOINT_FAMILIES_H_
#define ATTNSERVE_MODEL_CHECKPOINT_FAMILIES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint/config.h"
#include "model/checkpoint/weights.h"

namespace attnserve {

// Symbolic dimensions, resolved against the config.
enum class Dim { kHidden, kInter, kVocab, kPositions, kTypes, kEmbed };

int64_t ResolveDim(Dim d, const ModelConfig& c);

// One row of a weight table. Per-layer names are prefixed with the family's
// layer prefix and the layer index. `slice` places q/k/v into thirds of the
// fused qkv tensors. `fill_when_absent`, when set, computes the tensor
// instead of failing when the checkpoint does not hold it (and returns false
// when the config does not allow that).
struct WeightSpec {
  const char* name;
  std::vector<Dim> shape;
  std::vector<float> BertWeights::*global = nullptr;
  std::vector<float> LayerWeights::*layer = nullptr;
  int slice = -1;  // 0, 1, 2: query, key, value part of a fused tensor
  bool (*fill_when_absent)(const ModelConfig&, std::vector<float>*) = nullptr;
};

// The config.json keys of a family (DistilBERT names them its own way).
struct ConfigKeys {
  const char* hidden = "hidden_size";
  const char* layers = "num_hidden_layers";
  const char* heads = "num_attention_heads";
  const char* intermediate = "intermediate_size";
  const char* activation = "hidden_act";
  const char* embedding_size = nullptr;  // ELECTRA: "embedding_size"
  const char* sinusoidal = nullptr;      // DistilBERT: "sinusoidal_pos_embds"
  bool token_types = true;               // reads type_vocab_size
  bool layer_norm_eps = true;  // reads it (DistilBERT: fixed 1e-12)
  bool position_embedding_type = true;  // reads it (only "absolute")
};

struct FamilySpec {
  ModelFamily family;
  const char* name;
  std::vector<std::string> model_types;  // config.json model_type values
  std::string tensor_prefix;  // optional in front of every name ("bert.")
  ConfigKeys keys;
  int default_pad_token_id = 0;
  int default_embedding_size = 0;  // 0 = hidden_size
  bool roberta_positions = false;  // offset pad_token_id + 1, skip padding
  const char* layer_prefix;        // "encoder.layer."
  std::vector<WeightSpec> embeddings;  // always
  std::vector<WeightSpec> projection;  // when embedding_size != hidden_size
  std::vector<WeightSpec> layer;       // per layer
  std::vector<WeightSpec> pooler;      // optional: all or none
};

// The family of `model_type` (config.json); Unimplemented listing the
// supported ones otherwise.
absl::StatusOr<const FamilySpec*> FamilyForModelType(
    const std::string& model_type, const std::string& file);
const FamilySpec& GetFamily(ModelFamily family);

// "bert, camembert, distilbert, electra, roberta, xlm-roberta".
std::string SupportedModelTypes();

// "gelu" → erf GELU, "gelu_new"/"gelu_pytorch_tanh" → tanh GELU, "relu";
// Unimplemented naming the supported ones otherwise.
absl::StatusOr<Activation> ParseActivation(const std::string& name,
                                           const std::string& file,
                                           const char* key);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_CHECKPOINT_FAMILIES_H_
