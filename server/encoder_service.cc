#include "server/encoder_service.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/grpc_status.h"
#include "server/validate.h"
#include "server/wire.h"

namespace attnserve {
namespace {

v1::Pooling ToProtoPooling(PoolingMode mode) {
  switch (mode) {
    case PoolingMode::kNone:
      return v1::POOLING_NONE;
    case PoolingMode::kCls:
      return v1::POOLING_CLS;
    case PoolingMode::kMean:
      return v1::POOLING_MEAN;
    case PoolingMode::kPooler:
      return v1::POOLING_POOLER;
  }
  return v1::POOLING_UNSPECIFIED;
}

// The client's deadline, or `default_deadline` from now when it set none
// (gRPC reports "none" as the far future).
absl::Time RequestDeadline(const grpc::CallbackServerContext& context,
                           absl::Duration default_deadline) {
  const absl::Time now = absl::Now();
  const absl::Time client = absl::FromChrono(context.deadline());
  if (client > now + absl::Hours(24 * 365 * 10)) return now + default_deadline;
  return client;
}

grpc::ServerUnaryReactor* FinishNow(CallTracker& calls,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = calls.NewReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Serializes `message` into `bytes` and finishes the call with it.
void FinishWith(grpc::ServerUnaryReactor* reactor,
                const google::protobuf::Message& message,
                grpc::ByteBuffer* bytes) {
  reactor->Finish(ToGrpcStatus(SerializeResponse(message, bytes)));
}

grpc::ServerUnaryReactor* FinishNowWith(
    CallTracker& calls, const google::protobuf::Message& message,
    grpc::ByteBuffer* bytes) {
  grpc::ServerUnaryReactor* reactor = calls.NewReactor();
  FinishWith(reactor, message, bytes);
  return reactor;
}

// Bytes of floats a pass handed back: weighs its completion for the
// CompletionExecutor's bound.
int64_t OutputBytes(
    const absl::StatusOr<std::vector<SequenceOutput>>& outputs) {
  if (!outputs.ok()) return 0;
  int64_t floats = 0;
  for (const SequenceOutput& o : *outputs) {
    floats += o.hidden.size() + o.attention.size() + o.embedding.size();
  }
  return floats * static_cast<int64_t>(sizeof(float));
}

}  // namespace

void ToProtoModelInfo(const ServedModel& model, v1::ModelInfo* out) {
  const ModelInfo& info = *model.info;
  const ModelConfig& c = info.config;
  out->set_name(info.name);
  out->set_num_layers(c.num_layers);
  out->set_num_heads(c.num_heads);
  out->set_hidden_size(c.hidden_size);
  out->set_intermediate_size(c.intermediate_size);
  out->set_vocab_size(c.vocab_size);
  out->set_max_position_embeddings(c.max_position_embeddings);
  out->set_weight_dtype(info.weight_dtype);
  out->set_type_vocab_size(c.type_vocab_size);
  out->set_precision(PrecisionName(info.precision));
  out->set_has_pooler(info.has_pooler);
  out->set_has_tokenizer(model.tokenizer != nullptr);
  out->set_default_pooling(ToProtoPooling(info.default_pooling));
  for (int layer = 0; layer < c.num_layers; ++layer) {
    out->add_heads_per_layer(info.HeadsIn(layer));
    for (int head = 0; head < c.num_heads; ++head) {
      if (!info.IsPruned(layer, head)) continue;
      v1::HeadRef* ref = out->add_pruned_heads();
      ref->set_layer(layer);
      ref->set_head(head);
    }
  }
}

// One RankHeads call while its passes run: owned by the completions of its
// passes (one at a time), so only one thread touches it at a time.
struct EncoderService::RankHeadsCall {
  explicit RankHeadsCall(RankHeadsJob j) : job(std::move(j)) {}
  RankHeadsJob job;
  grpc::CallbackServerContext* context = nullptr;  // lives until Finish
  grpc::ServerUnaryReactor* reactor = nullptr;
  grpc::ByteBuffer* response = nullptr;  // serialized RankHeadsResponse
  absl::Time deadline;
};

EncoderService::EncoderService(ServedModel model, const ServerOptions& options,
                               Batcher* batcher,
                               CompletionExecutor* completions)
    : model_(std::move(model)),
      limits_(options.limits),
      default_deadline_(options.default_deadline),
      tokens_per_pass_(options.batcher.max_batch_tokens),
      batcher_(batcher),
      completions_(completions) {}

grpc::ServerUnaryReactor* EncoderService::Encode(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  v1::EncodeRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<ValidatedEncode> validated =
      ValidateEncodeRequest(request, model_, limits_);
  if (!validated.ok()) return FinishNow(calls_, validated.status());

  grpc::ServerUnaryReactor* reactor = calls_.NewReactor();
  Batcher::Request job;
  job.tasks = std::move(validated->tasks);
  job.deadline = RequestDeadline(*context, default_deadline_);
  // The context lives until Finish, which only the completion calls.
  job.is_cancelled = [context] { return context->IsCancelled(); };
  struct Labels {
    OutputSpec spec;
    std::vector<InputSequence> inputs;
  };
  auto labels = std::make_shared<Labels>(
      Labels{std::move(validated->spec), std::move(validated->inputs)});
  // Inference thread: hand the outputs over and return to the next pass.
  job.done = [this, reactor, response_bytes,
              labels](absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    const int64_t bytes = OutputBytes(outputs);
    completions_->Post(
        [this, reactor, response_bytes, labels,
         outputs = std::move(outputs)]() mutable {
          if (!outputs.ok()) {
            reactor->Finish(ToGrpcStatus(outputs.status()));
            return;
          }
          v1::EncodeResponse response;
          response.set_model(model_.info->name);
          for (size_t i = 0; i < labels->inputs.size(); ++i) {
            absl::Status status = ToSequenceResult(
                labels->spec, model_.info->config, labels->inputs[i],
                (*outputs)[i], response.add_results());
            if (!status.ok()) {
              reactor->Finish(ToGrpcStatus(status));
              return;
            }
          }
          outputs = absl::StatusOr<std::vector<SequenceOutput>>();  // free
          FinishWith(reactor, response, response_bytes);
        },
        bytes);
  };
  absl::Status submitted = batcher_->Submit(std::move(job));
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* EncoderService::GetModelInfo(
    grpc::CallbackServerContext* /*context*/,
    const grpc::ByteBuffer* request_bytes, grpc::ByteBuffer* response_bytes) {
  v1::GetModelInfoRequest request;
  absl::Status status = ParseRequest(*request_bytes, &request);
  if (status.ok()) status = CheckModelName(request.model(), *model_.info);
  if (!status.ok()) return FinishNow(calls_, status);
  v1::ModelInfo response;
  ToProtoModelInfo(model_, &response);
  return FinishNowWith(calls_, response, response_bytes);
}

grpc::ServerUnaryReactor* EncoderService::Tokenize(
    grpc::CallbackServerContext* /*context*/,
    const grpc::ByteBuffer* request_bytes, grpc::ByteBuffer* response_bytes) {
  // No model work: answered here, like validation.
  v1::TokenizeRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<std::vector<InputSequence>> inputs =
      ValidateTokenizeRequest(request, model_, limits_);
  if (!inputs.ok()) return FinishNow(calls_, inputs.status());
  v1::TokenizeResponse response;
  for (InputSequence& input : *inputs) {
    ToTokenizedSequence(input, response.add_results());
  }
  return FinishNowWith(calls_, response, response_bytes);
}

grpc::ServerUnaryReactor* EncoderService::RankHeads(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  v1::RankHeadsRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<RankHeadsJob> job =
      ValidateRankHeadsRequest(request, model_, limits_, tokens_per_pass_);
  if (!job.ok()) return FinishNow(calls_, job.status());
  auto call = std::make_shared<RankHeadsCall>(*std::move(job));
  call->context = context;
  call->reactor = calls_.NewReactor();
  call->response = response_bytes;
  call->deadline = RequestDeadline(*context, default_deadline_);
  grpc::ServerUnaryReactor* reactor = call->reactor;
  SubmitRankHeadsPass(std::move(call));
  return reactor;
}

void EncoderService::SubmitRankHeadsPass(std::shared_ptr<RankHeadsCall> call) {
  // The passes run one after another through the batcher, each queued behind
  // whatever else waits, so a ranking never holds the inference thread for
  // longer than one pass of at most tokens_per_pass_ tokens.
  Batcher::Request pass;
  pass.tasks = call->job.NextPass();
  pass.deadline = call->deadline;
  grpc::CallbackServerContext* context = call->context;
  pass.is_cancelled = [context] { return context->IsCancelled(); };
  grpc::ServerUnaryReactor* reactor = call->reactor;
  pass.done = [this,
               call](absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    const int64_t bytes = OutputBytes(outputs);
    completions_->Post(
        [this, call, outputs = std::move(outputs)]() mutable {
          if (!outputs.ok()) {
            call->reactor->Finish(ToGrpcStatus(outputs.status()));
            return;
          }
          absl::Status added = call->job.AddResults(*outputs);
          if (!added.ok()) {
            call->reactor->Finish(ToGrpcStatus(absl::InternalError(
                absl::StrCat("RankHeads: ", added.message()))));
            return;
          }
          if (!call->job.done()) {
            SubmitRankHeadsPass(std::move(call));
            return;
          }
          absl::StatusOr<HeadRanking> ranking = call->job.Result();
          if (!ranking.ok()) {
            call->reactor->Finish(ToGrpcStatus(absl::InternalError(
                absl::StrCat("RankHeads: ", ranking.status().message()))));
            return;
          }
          v1::RankHeadsResponse response;
          ToRankHeadsResponse(*ranking, model_.info->name, &response);
          FinishWith(call->reactor, response, call->response);
        },
        bytes);
  };
  absl::Status submitted = batcher_->Submit(std::move(pass));
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
}

}  // namespace attnserve
