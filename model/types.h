// The vocabulary shared by the kernels, the encoder and the server: compute
// precision, pooling, and what one sequence asks of a forward pass and gets
// back. Kept apart so that the kernels and the batcher need not include the
// encoder to learn an enum.
#ifndef ATTNSERVE_MODEL_TYPES_H_
#define ATTNSERVE_MODEL_TYPES_H_

#include <cstdint>
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
};

struct SequenceOutput {
  std::vector<float> hidden;  // (T, hidden) when want_hidden
  std::vector<float>
      attention;  // (attention_layers.size(), heads, T, T), before head_mask
  std::vector<float> embedding;      // (hidden) when pooling != kNone
  std::vector<float> pooler_output;  // (hidden) when want_pooler_output
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TYPES_H_
