// attnctl bench: the requests its workers send, built before the clock
// starts, and the tokens an answer ran (client/bench.cc runs them).
#ifndef ATTNSERVE_CLIENT_BENCH_REQUESTS_H_
#define ATTNSERVE_CLIENT_BENCH_REQUESTS_H_

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "client/cli.h"
#include "proto/attnserve.pb.h"
#include "proto/inference.pb.h"

namespace attnserve::client {

// What one call sends, built before the clock starts. Only the message of
// the run's RPC is filled.
struct Call {
  v1::EncodeRequest encode;            // Encode, EncodeStream
  v1::TokenizeRequest tokenize;        // Tokenize
  inference::ModelInferRequest infer;  // ModelInfer
  int64_t sequences = 0;
  // ModelInfer with input_ids: the real tokens, known in advance. Otherwise
  // counted from the response (text is tokenized by the server).
  int64_t tokens = 0;
};

// Where the ids of --tokens come from.
struct Synthetic {
  int tokens = 0;  // per sequence, [CLS] and [SEP] included
  int vocab_size = 0;
  int cls = -1, sep = -1;  // -1 = unknown (no vocab): random ids there too
};

// The sequences of call `index` of a worker: --batch of them, the TEXTs or
// --ids in turn, or synthetic ids.
std::vector<v1::Sequence> CallSequences(const Flags& f, const Synthetic& syn,
                                        const std::vector<v1::Sequence>& given,
                                        int64_t index, std::mt19937* rng);

// The head_mask pairs with layer:* expanded to `num_heads` heads.
std::vector<std::pair<int, int>> ExpandedMask(const Flags& f, int num_heads);

v1::EncodeRequest EncodeRequestOf(const Flags& f,
                                  std::vector<v1::Sequence> seqs,
                                  const std::vector<std::pair<int, int>>& mask);

// The ModelInfer request of the same sequences and options as
// EncodeRequestOf: input_ids [B, T] (right-padded, with attention_mask when
// ragged) or text [B]; outputs embedding (unless --pooling none),
// last_hidden_state (--hidden), attentions (--attention), token_ids (text,
// to count the tokens). *tokens = the real tokens of id input, else 0.
inference::ModelInferRequest InferRequestOf(
    const Flags& f, const std::vector<v1::Sequence>& seqs,
    const std::vector<std::pair<int, int>>& mask, int64_t* tokens);

// The tokens an OK answer ran.
int64_t CountTokens(const v1::EncodeResponse& r);
int64_t CountTokens(const inference::ModelInferResponse& r);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_BENCH_REQUESTS_H_
