// The BERT weights as float32 host arrays, and the one table that names them.
#ifndef ATTNSERVE_MODEL_CHECKPOINT_WEIGHTS_H_
#define ATTNSERVE_MODEL_CHECKPOINT_WEIGHTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint/config.h"

namespace attnserve {

struct LayerWeights {
  std::vector<float> qkv_weight;  // (3H, H) query, key, value rows concatenated
  std::vector<float> qkv_bias;    // (3H)
  std::vector<float> out_weight;  // (H, H) attention.output.dense
  std::vector<float> out_bias;    // (H)
  std::vector<float> ln1_gamma;   // (H) attention.output.LayerNorm
  std::vector<float> ln1_beta;    // (H)
  std::vector<float> ffn1_weight;  // (I, H) intermediate.dense
  std::vector<float> ffn1_bias;    // (I)
  std::vector<float> ffn2_weight;  // (H, I) output.dense
  std::vector<float> ffn2_bias;    // (H)
  std::vector<float> ln2_gamma;    // (H) output.LayerNorm
  std::vector<float> ln2_beta;     // (H)
};

// Named for BERT; every family fills it (model/checkpoint/families.h). E is
// embedding_size (ELECTRA's; = H elsewhere).
struct BertWeights {
  std::vector<float> word_embeddings;      // (V, E)
  std::vector<float> position_embeddings;  // (P, E)
  std::vector<float> type_embeddings;      // (TV, E), empty for DistilBERT
  std::vector<float> emb_ln_gamma;         // (E)
  std::vector<float> emb_ln_beta;          // (E)
  std::vector<float> emb_project_weight;   // (H, E) ELECTRA when E != H, else empty
  std::vector<float> emb_project_bias;     // (H)
  std::vector<LayerWeights> layers;        // (L)
  std::vector<float> pooler_weight;        // (H, H), empty when absent
  std::vector<float> pooler_bias;          // (H), empty when absent
  std::string stored_dtype;                // "F32", "F16", "BF16" or "mixed"
};

// Receives each layer's weights as soon as they are read. A caller that packs
// them can move them out: the layer is not kept, so the loader holds one
// layer at a time instead of the whole model.
using LayerSink = std::function<absl::Status(int layer, LayerWeights& weights)>;

// Reads every tensor of the config's family table from `path` (a
// .safetensors file written by BertModel, RobertaModel, ..., with or without
// the family's prefix such as "bert."), checking name, dtype and shape;
// errors name the file and the tensor. With a `sink`, layers go there and
// BertWeights::layers stays empty.
absl::StatusOr<BertWeights> LoadWeights(const std::string& path,
                                        const ModelConfig& config,
                                        const LayerSink& sink = nullptr);

// The Hugging Face names of all tensors, in table order, for `config` and
// its family (without prefix). Used by the demo-model writer and tests.
struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<NamedShape> WeightTable(const ModelConfig& config,
                                    bool with_pooler);

// The inverse of LoadWeights, for writers of checkpoints (the demo models):
// every tensor of the table, in table order, with its values taken from
// `weights` (query, key and value cut out of the fused qkv arrays; the pooler
// when `weights` has one). InvalidArgument names the first tensor whose
// array does not have the table's size.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};
absl::StatusOr<std::vector<NamedTensor>> ToNamedTensors(
    const BertWeights& weights, const ModelConfig& config);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_CHECKPOINT_WEIGHTS_H_
