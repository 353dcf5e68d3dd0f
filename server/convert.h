// Model outputs → proto: SequenceOutput → SequenceResult (selects the
// requested layers, heads and query rows, writes tensors as little-endian
// bytes, float32 or float16, computes head statistics and rollout),
// Encoding → TokenizedSequence, HeadRanking → RankHeadsResponse.
//
// Pure functions; any thread (the server calls them on its completion thread,
// right after the pass).
#ifndef ATTNSERVE_SERVER_CONVERT_H_
#define ATTNSERVE_SERVER_CONVERT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "model/encoder/encoder.h"
#include "model/encoder/head_ranking.h"
#include "proto/attnserve.pb.h"
#include "server/validate.h"

namespace attnserve {

// Fills `result` for one sequence run with the task that `spec` produced:
// token ids and tokens from `input`, then the tensors and statistics asked
// for. Takes the vectors out of `input` and `output`. INTERNAL if the
// output's sizes do not match (a model bug, never the client's).
//
// Costs beyond copying: statistics O(layers·heads²·T²), rollout
// O(layers·T³) (model/head_stats.h); the server runs this on its completion
// thread, not the inference thread.
absl::Status ToSequenceResult(const OutputSpec& spec, const ModelConfig& config,
                              InputSequence& input, SequenceOutput& output,
                              v1::SequenceResult* result);

// Tokenize's answer for one sequence: ids, tokens, type ids (all 0 when a
// token_ids input sent none) and offsets flattened to (tokens, 2).
void ToTokenizedSequence(InputSequence& input, v1::TokenizedSequence* result);

// RankHeads' answer; `model` names the served model.
void ToRankHeadsResponse(const HeadRanking& ranking, const std::string& model,
                         v1::RankHeadsResponse* response);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_CONVERT_H_
