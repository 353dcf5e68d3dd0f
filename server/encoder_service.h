// The attnserve.v1.Encoder service: thin callback handlers that validate a
// request (tokenizing its text), hand the model's work to the Batcher and
// return. No handler blocks or runs the model.
//
// Threads: handlers run on gRPC's callback threads (validation and
// tokenization; Tokenize and GetModelInfo are answered there). The Batcher's
// done callbacks run on the inference thread and only post the outputs to
// the CompletionExecutor, whose thread converts them to proto, computes the
// statistics, submits RankHeads' next pass and calls Finish. Every accepted
// call is finished exactly once: by its handler when refused, else by
// exactly one completion.
#ifndef ATTNSERVE_SERVER_ENCODER_SERVICE_H_
#define ATTNSERVE_SERVER_ENCODER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "model/encoder.h"
#include "proto/attnserve.grpc.pb.h"
#include "server/batcher.h"
#include "server/completion_executor.h"
#include "server/options.h"
#include "server/validate.h"

namespace attnserve {

// Fills the proto ModelInfo from the loader's and the tokenizer's.
void ToProtoModelInfo(const ServedModel& model, v1::ModelInfo* out);

class EncoderService final : public v1::Encoder::CallbackService {
 public:
  // `model`'s pointees, `batcher` and `completions` must outlive the
  // service; `completions` must stop after `batcher` (it runs the batcher's
  // last answers).
  EncoderService(ServedModel model, const ServerOptions& options,
                 Batcher* batcher, CompletionExecutor* completions);

  grpc::ServerUnaryReactor* Encode(grpc::CallbackServerContext* context,
                                   const v1::EncodeRequest* request,
                                   v1::EncodeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* RankHeads(grpc::CallbackServerContext* context,
                                      const v1::RankHeadsRequest* request,
                                      v1::RankHeadsResponse* response) override;

 private:
  struct RankHeadsCall;
  // Submits `call`'s next pass; its completion adds the results and submits
  // the pass after, or answers. Finishes the call if the batcher refuses.
  void SubmitRankHeadsPass(std::shared_ptr<RankHeadsCall> call);

  const ServedModel model_;
  const RequestLimits limits_;
  const absl::Duration default_deadline_;
  const int64_t tokens_per_pass_;  // RankHeads passes: the batcher's budget
  Batcher* const batcher_;
  CompletionExecutor* const completions_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_ENCODER_SERVICE_H_
