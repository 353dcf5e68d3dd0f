// The Open Inference Protocol (KServe v2) as a second front door to the same
// validator, batcher and encoder as attnserve.v1: a ModelInferRequest becomes
// a v1::EncodeRequest (plus what only OIP asks for), and the v1 results
// become OIP's padded [B, T, …] tensors.
//
// Inputs (the names ONNX exports of Hugging Face BERT use):
//   input_ids       [B, T] INT64 or INT32
//   attention_mask  [B, T] INT64 or INT32, optional: 1s then 0s (right
//                   padding); each sequence runs at its real length
//   token_type_ids  [B, T] INT64 or INT32, optional
//   text            [B] or [B, 1] BYTES (UTF-8), instead of input_ids
//   text_pair       [B] or [B, 1] BYTES, optional, with text
// Outputs (those named in `outputs`; none named = all but attentions):
//   last_hidden_state [B, T, H] FP32, zero on padding
//   pooler_output     [B, H] FP32, when the model has a pooler
//   embedding         [B, H] FP32, pooled as the parameters say
//   attentions        [B, L_sel, H_sel, T, T] FP32 or FP16, zero on padding
//   token_ids         [B, T] INT64 (all only for text input)
// Request parameters: pooling (none|cls|mean|pooler), normalize, truncate,
// attention_layers and attention_heads ("0,3"), attention_dtype (FP32|FP16),
// head_mask ("L:H,…").
//
// Pure functions; any thread.
#ifndef ATTNSERVE_SERVER_OIP_H_
#define ATTNSERVE_SERVER_OIP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/encoder/encoder.h"
#include "proto/attnserve.pb.h"
#include "proto/inference.pb.h"
#include "server/validate.h"

namespace attnserve {

enum class OipOutput {
  kLastHiddenState,
  kPoolerOutput,
  kEmbedding,
  kAttentions,
  kTokenIds,
};

// A ModelInferRequest in attnserve.v1 terms.
struct OipRequest {
  v1::EncodeRequest encode;  // sequences, pooling, attention, head mask, …
  std::vector<OipOutput> outputs;  // in response order
  bool pooler_output = false;      // outputs has kPoolerOutput
  // T of the [B, T] outputs: the input's for ids, the longest sequence's
  // after tokenizing for text (set by SetPaddedLength).
  int64_t padded_length = 0;
  bool text = false;
};

// Decodes and checks `request` against `model`: names, datatypes, shapes and
// sizes of the inputs, raw or typed contents (never mixed), the parameters
// and the outputs. INVALID_ARGUMENT naming the tensor or parameter; NOT_FOUND
// for another model's name. The sequences are then validated as any
// EncodeRequest (ValidateEncodeRequest).
absl::StatusOr<OipRequest> FromModelInfer(
    const inference::ModelInferRequest& request, const ServedModel& model);

// After validation: T for text input, and the padded response's size against
// `limits` (RESOURCE_EXHAUSTED naming the size and the limit).
absl::Status SetPaddedLength(const std::vector<InputSequence>& inputs,
                             const ModelConfig& config,
                             const RequestLimits& limits, OipRequest* request);

// The response: `results` are the v1 results of request.encode, `poolers`
// the pooler outputs (one (H) vector per sequence, when asked).
absl::Status ToModelInferResponse(
    const OipRequest& request, const v1::EncodeResponse& results,
    const std::vector<std::vector<float>>& poolers, const ModelInfo& info,
    inference::ModelInferResponse* response);

// What ModelMetadata says: platform, the inputs and outputs with -1 for
// variable dimensions.
void ToModelMetadata(const ServedModel& model,
                     inference::ModelMetadataResponse* response);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_OIP_H_
