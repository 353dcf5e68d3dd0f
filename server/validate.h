// Checks an EncodeRequest against the served model and the server's limits
// and turns it into the model's SequenceTasks. Every refusal names the field,
// the value and the limit, so a client can fix the request from the message.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_SERVER_VALIDATE_H_
#define ATTNSERVE_SERVER_VALIDATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/encoder.h"
#include "proto/attnserve.pb.h"
#include "server/options.h"

namespace attnserve {

// What the response to a validated request carries; the same for all its
// sequences. Read by convert.h.
struct OutputSpec {
  bool hidden_states = false;  // SequenceResult.hidden_states (T, hidden)
  bool embedding = false;      // SequenceResult.embedding (hidden)
  bool attention = false;      // SequenceResult.attention
  // Response layer i is model layer attention_layers[i]; it sits at index
  // layer_slots[i] of SequenceOutput::attention, whose layers are ascending
  // (SequenceTask::attention_layers).
  std::vector<int> attention_layers;
  std::vector<int> layer_slots;
  std::vector<int> attention_heads;            // model heads, in response order
  v1::DataType attention_dtype = v1::FLOAT32;  // FLOAT32 or FLOAT16
};

struct ValidatedEncode {
  std::vector<SequenceTask> tasks;  // one per EncodeRequest.sequences entry
  OutputSpec spec;
  int64_t response_bytes = 0;  // tensor bytes the response will carry
};

// OK when `requested` is empty or names the served model, else NOT_FOUND
// naming both.
absl::Status CheckModelName(const std::string& requested,
                            const ModelInfo& info);

// INVALID_ARGUMENT for a malformed request or one over a per-request limit,
// NOT_FOUND for an unknown model, RESOURCE_EXHAUSTED for a response over
// limits.max_response_bytes, UNIMPLEMENTED for fields of later versions.
absl::StatusOr<ValidatedEncode> ValidateEncodeRequest(
    const v1::EncodeRequest& request, const ModelInfo& info,
    const RequestLimits& limits);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_VALIDATE_H_
