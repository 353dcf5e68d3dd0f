// Checks requests against the served model and the server's limits, tokenizes
// their text, and turns them into the model's work: SequenceTasks for Encode,
// a RankHeadsJob for RankHeads. Every refusal names the field, the value and
// the limit, so a client can fix the request from the message.
//
// Pure functions; any thread (the server calls them on gRPC threads: they
// tokenize, which is cheap, and never run the model).
#ifndef ATTNSERVE_SERVER_VALIDATE_H_
#define ATTNSERVE_SERVER_VALIDATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/encoder/encoder.h"
#include "model/encoder/head_ranking.h"
#include "model/text/text_tokenizer.h"
#include "proto/attnserve.pb.h"
#include "server/options.h"

namespace attnserve {

// The served model as the request path sees it; immutable, shared by all
// threads, outlives the service.
struct ServedModel {
  const ModelInfo* info = nullptr;
  // The model directory's vocab; null when it has none (or it could not be
  // used): then text is refused with FAILED_PRECONDITION.
  const TextTokenizer* tokenizer = nullptr;
  // Why there is no tokenizer, worded for clients (no server paths).
  std::string no_tokenizer_reason;
  // Its place among the served models (server/model_registry.h): the
  // Batcher::Request::model of its work.
  int index = 0;
};

// What the response to a validated request carries; the same for all its
// sequences. Read by convert.h.
struct OutputSpec {
  bool hidden_states = false;  // SequenceResult.hidden_states (T, hidden)
  bool embedding = false;      // SequenceResult.embedding (hidden)
  bool attention = false;      // SequenceResult.attention (the maps)
  bool stats = false;          // head_stats and layer_stats
  bool rollout = false;        // SequenceResult.rollout (T, T)
  // Response layer i is model layer attention_layers[i]; it sits at index
  // layer_slots[i] of SequenceOutput::attention, whose layers are ascending
  // (SequenceTask::attention_layers; all layers when rollout is asked).
  std::vector<int> attention_layers;
  std::vector<int> layer_slots;
  std::vector<int> attention_heads;  // model heads, in response order
  // Query rows of the maps, in response order; empty = all T rows.
  std::vector<int64_t> query_positions;
  v1::DataType attention_dtype = v1::FLOAT32;  // FLOAT32 or FLOAT16
  // Token id whose positions sep_weight counts; -1 = none (no vocab).
  int32_t sep_id = -1;
};

// One request sequence as the model runs it (the tokenizer's Encoding
// layout). Text input: the tokenizer's output. token_ids input: the ids and
// type ids as sent (type ids may be empty = all 0), tokens from the vocab
// (empty without one), no offsets.
using InputSequence = Encoding;

struct ValidatedEncode {
  std::vector<SequenceTask> tasks;    // one per EncodeRequest.sequences entry
  std::vector<InputSequence> inputs;  // the same, for labelling the results
  OutputSpec spec;
  int64_t response_bytes = 0;  // payload the response will carry
};

// OK when `requested` is empty or names the served model, else NOT_FOUND
// naming both.
absl::Status CheckModelName(const std::string& requested,
                            const ModelInfo& info);

// Tokenizes (max_length = max_position_embeddings, `truncate` as asked) and
// checks the sequences of any request: count and total tokens against
// `limits`, each sequence's ids against the model. INVALID_ARGUMENT naming
// sequences[i] and the field; FAILED_PRECONDITION for text on a model
// without a vocab.
absl::StatusOr<std::vector<InputSequence>> ResolveSequences(
    const google::protobuf::RepeatedPtrField<v1::Sequence>& sequences,
    bool truncate, const ServedModel& model, const RequestLimits& limits);

// INVALID_ARGUMENT for a malformed request or one over a per-request limit,
// NOT_FOUND for an unknown model, FAILED_PRECONDITION for text without a
// vocab, RESOURCE_EXHAUSTED for a response over limits.max_response_bytes.
absl::StatusOr<ValidatedEncode> ValidateEncodeRequest(
    const v1::EncodeRequest& request, const ServedModel& model,
    const RequestLimits& limits);

// Tokenize's sequences, as ResolveSequences; FAILED_PRECONDITION when the
// model has no vocab (even for token_ids input: tokens come from the vocab).
absl::StatusOr<std::vector<InputSequence>> ValidateTokenizeRequest(
    const v1::TokenizeRequest& request, const ServedModel& model,
    const RequestLimits& limits);

// The ablations of a RankHeads request, split into passes of at most
// `tokens_per_pass` tokens and `cost_per_pass` work (RankHeadsLimits; 0 =
// unbounded), reusing layer inputs unless told not to. RESOURCE_EXHAUSTED
// when the work exceeds limits.max_rank_heads_tokens, saying the work, the
// limit and what fits.
absl::StatusOr<RankHeadsJob> ValidateRankHeadsRequest(
    const v1::RankHeadsRequest& request, const ServedModel& model,
    const RequestLimits& limits, int64_t tokens_per_pass,
    int64_t cost_per_pass = 0, bool reuse_layer_inputs = true);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_VALIDATE_H_
