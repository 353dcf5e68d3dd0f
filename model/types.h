// The vocabulary shared by the kernels, the encoder and the server: compute
// precision, pooling, and what one sequence asks of a forward pass and gets
// back. Kept apart so that the kernels and the batcher need not include the
// encoder to learn an enum.
#ifndef ATTNSERVE_MODEL_TYPES_H_
#define ATTNSERVE_MODEL_TYPES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnserve {

enum class Precision { kFloat32, kBFloat16, kInt8 };
enum class PoolingMode { kNone, kCls, kMean, kPooler };
// The FFN activation, applied as a oneDNN post-op: erf GELU ("gelu"), tanh
// GELU ("gelu_new", "gelu_pytorch_tanh"), ReLU ("relu").
enum class Activation { kNone, kGeluErf, kGeluTanh, kRelu };

const char* PrecisionName(Precision p);  // "fp32", "bf16", "int8"
absl::StatusOr<Precision> ParsePrecision(const std::string& name);

// What one sequence asks of a forward pass. Sequences of one batch may ask
// for different things (they may come from different requests).
struct SequenceTask {
  std::vector<int32_t> token_ids;       // (T) including [CLS]/[SEP]
  std::vector<int32_t> token_type_ids;  // (T), or empty = all 0
  bool want_hidden = false;
  std::vector<int> attention_layers;  // layers whose probs to keep, ascending
  std::vector<uint8_t>
      head_mask;  // (layers, heads), 1 = output zeroed; or empty
  PoolingMode pooling = PoolingMode::kNone;
  bool normalize = false;  // L2-normalize the pooled embedding
  // Also BERT's pooler output (tanh(W·h_[CLS] + b)), whatever `pooling` is:
  // the Open Inference Protocol returns both.
  bool want_pooler_output = false;
  // Start at layer `start_layer` from `layer_inputs` instead of embedding
  // the tokens: RankHeads runs the unmasked pass once (want_layer_inputs)
  // and starts each ablation at the layer it masks, since the layers below
  // give the same bits with or without that mask. The result equals the full
  // pass bit for bit (fp32 and every precision: a row's result does not
  // depend on what else is in the pass). Shared, not copied, by the tasks
  // of one sequence. attention_layers and head_mask may not name a layer
  // below start_layer.
  int start_layer = 0;
  std::shared_ptr<const std::vector<float>>
      layer_inputs;  // (L, T, hidden) as SequenceOutput::layer_inputs
  bool want_layer_inputs = false;  // only with start_layer 0
};

// A task's work in layer-tokens: its tokens times the layers it runs,
// T·(L − start_layer). A full pass is T·L; the cost budgets of the batcher
// and of RankHeads count this.
inline int64_t TaskLayerTokens(const SequenceTask& task, int num_layers) {
  const int64_t layers = num_layers > task.start_layer
                             ? num_layers - task.start_layer
                             : 1;  // an invalid task, refused by Forward
  return int64_t(task.token_ids.size()) * layers;
}

struct SequenceOutput {
  std::vector<float> hidden;  // (T, hidden) when want_hidden
  std::vector<float>
      attention;  // (attention_layers.size(), heads, T, T), before head_mask
  std::vector<float> embedding;      // (hidden) when pooling != kNone
  std::vector<float> pooler_output;  // (hidden) when want_pooler_output
  // (L, T, hidden) when want_layer_inputs: the input of every layer (layer
  // 0's is the embeddings after their LayerNorm, or projection).
  std::vector<float> layer_inputs;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TYPES_H_
