// The attnserve.v1.Encoder service: thin callback handlers that validate a
// request (tokenizing its text), hand the model's work to the Batcher and
// return. No handler blocks or runs the model.
//
// The handlers are gRPC "raw" callbacks: they take the request bytes and
// parse them (server/wire.h), so a request protobuf refuses (a string that is
// not UTF-8) gets INVALID_ARGUMENT saying where, not gRPC's bare
// UNIMPLEMENTED; they serialize the response before Finish.
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
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "model/encoder/encoder.h"
#include "proto/attnserve.grpc.pb.h"
#include "server/batcher.h"
#include "server/call_tracker.h"
#include "server/completion_executor.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/service_hooks.h"
#include "server/validate.h"

namespace attnserve {

// Fills the proto ModelInfo from the loader's and the tokenizer's.
void ToProtoModelInfo(const ServedModel& model, v1::ModelInfo* out);

class EncoderService final
    : public v1::Encoder::WithRawCallbackMethod_Encode<
          v1::Encoder::WithRawCallbackMethod_GetModelInfo<
              v1::Encoder::WithRawCallbackMethod_Tokenize<
                  v1::Encoder::WithRawCallbackMethod_RankHeads<
                      v1::Encoder::WithRawCallbackMethod_ListModels<
                          v1::Encoder::WithRawCallbackMethod_EncodeStream<
                              v1::Encoder::Service>>>>>> {
 public:
  // `models`, `batcher` and `completions` must outlive the service;
  // `completions` must stop after `batcher` (it runs the batcher's last
  // answers). Each request's model field picks one of `models`, whose index
  // is its Batcher::Request::model. `hooks`: the token check and where the
  // work goes.
  EncoderService(const ModelRegistry* models, const ServerOptions& options,
                 Batcher* batcher, CompletionExecutor* completions,
                 ServiceHooks hooks = {});

  // Each takes a serialized request (v1::EncodeRequest, ...) and answers a
  // serialized response (v1::EncodeResponse, ...).
  grpc::ServerUnaryReactor* Encode(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* RankHeads(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  // Pipelined Encode: see server/encode_stream.h.
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* EncodeStream(
      grpc::CallbackServerContext* context) override;

  // Messages of one EncodeStream read and not yet answered; past it the
  // stream stops reading (HTTP/2 flow control holds the client back).
  static constexpr int kStreamMessagesInFlight = 32;

  const CallTracker& calls() const { return calls_; }

 private:
  // Queues a validated Encode of `model`; OK means `answer` is called
  // exactly once, on the completion thread, with the response or why there
  // is none. `timing` (may be null) is filled by the batcher before that.
  absl::Status SubmitEncode(
      const ServedModel* model, ValidatedEncode validated, absl::Time deadline,
      std::function<bool()> is_cancelled, Batcher::Request::Timing* timing,
      std::function<void(absl::StatusOr<v1::EncodeResponse>)> answer);
  struct RankHeadsCall;
  // Submits `call`'s next pass; its completion adds the results and submits
  // the pass after, or answers. Finishes the call if the batcher refuses.
  void SubmitRankHeadsPass(std::shared_ptr<RankHeadsCall> call);

  CallTracker calls_;  // every call of this service until gRPC is done
  const ModelRegistry* const models_;
  const RequestLimits limits_;
  const absl::Duration default_deadline_;
  const int64_t tokens_per_pass_;  // RankHeads passes: the batcher's budget
  const int64_t cost_per_pass_;    // and its --max_pass_tokens
  const bool rank_heads_reuse_;    // ServerOptions::rank_heads_reuse_layers
  Batcher* const batcher_;
  CompletionExecutor* const completions_;
  const ServiceHooks hooks_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_ENCODER_SERVICE_H_
