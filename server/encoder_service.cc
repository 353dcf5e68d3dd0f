#include "server/encoder_service.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/grpc_status.h"
#include "server/validate.h"

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

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

void ToProtoModelInfo(const ModelInfo& info, v1::ModelInfo* out) {
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
  out->set_has_tokenizer(false);  // server-side tokenization: a later issue
  out->set_default_pooling(ToProtoPooling(info.default_pooling));
}

EncoderService::EncoderService(const ModelInfo& info,
                               const ServerOptions& options, Batcher* batcher)
    : info_(info),
      limits_(options.limits),
      default_deadline_(options.default_deadline),
      batcher_(batcher) {}

grpc::ServerUnaryReactor* EncoderService::Encode(
    grpc::CallbackServerContext* context, const v1::EncodeRequest* request,
    v1::EncodeResponse* response) {
  absl::StatusOr<ValidatedEncode> validated =
      ValidateEncodeRequest(*request, info_, limits_);
  if (!validated.ok()) return FinishNow(context, validated.status());

  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Batcher::Request job;
  job.tasks = std::move(validated->tasks);
  job.deadline = RequestDeadline(*context, default_deadline_);
  // The context lives until Finish, which only `done` calls.
  job.is_cancelled = [context] { return context->IsCancelled(); };
  job.done = [this, reactor, request, response,
              spec = std::move(validated->spec)](
                 absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    if (!outputs.ok()) {
      reactor->Finish(ToGrpcStatus(outputs.status()));
      return;
    }
    response->set_model(info_.name);
    for (int i = 0; i < request->sequences_size(); ++i) {
      absl::Status status = ToSequenceResult(
          spec, info_.config, request->sequences(i).token_ids_size(),
          (*outputs)[i], response->add_results());
      if (!status.ok()) {
        response->Clear();
        reactor->Finish(ToGrpcStatus(status));
        return;
      }
    }
    reactor->Finish(grpc::Status::OK);
  };
  absl::Status submitted = batcher_->Submit(std::move(job));
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* EncoderService::GetModelInfo(
    grpc::CallbackServerContext* context,
    const v1::GetModelInfoRequest* request, v1::ModelInfo* response) {
  absl::Status status = CheckModelName(request->model(), info_);
  if (status.ok()) ToProtoModelInfo(info_, response);
  return FinishNow(context, status);
}

grpc::ServerUnaryReactor* EncoderService::Tokenize(
    grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
    v1::TokenizeResponse* response) {
  return FinishNow(context,
                   absl::UnimplementedError(
                       "Tokenize is not implemented yet: tokenize on the "
                       "client and send Sequence.token_ids"));
}

grpc::ServerUnaryReactor* EncoderService::RankHeads(
    grpc::CallbackServerContext* context, const v1::RankHeadsRequest* request,
    v1::RankHeadsResponse* response) {
  return FinishNow(
      context, absl::UnimplementedError("RankHeads is not implemented yet"));
}

}  // namespace attnserve
