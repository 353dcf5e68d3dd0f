#include "server/encoder_service.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/call_record.h"
#include "server/convert.h"
#include "server/deadline.h"
#include "server/encode_stream.h"
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

grpc::ServerUnaryReactor* FinishNow(CallTracker& calls,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = calls.NewReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Serializes `message` into `bytes`: the status to finish the call with.
grpc::Status Serialized(const google::protobuf::Message& message,
                        grpc::ByteBuffer* bytes) {
  return ToGrpcStatus(SerializeResponse(message, bytes));
}

// Serializes `message` into `bytes` and finishes the call with it.
void FinishWith(grpc::ServerUnaryReactor* reactor,
                const google::protobuf::Message& message,
                grpc::ByteBuffer* bytes) {
  reactor->Finish(Serialized(message, bytes));
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
    floats += o.hidden.size() + o.attention.size() + o.embedding.size() +
              o.layer_inputs.size();
  }
  return floats * static_cast<int64_t>(sizeof(float));
}

// A stream refused before its first read (a missing or wrong token).
class RefusedStream
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

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
  out->set_family(info.family);
  out->set_model_type(c.model_type);
  out->set_max_tokens(c.max_tokens());
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
  const ServedModel* model = nullptr;
  absl::Time start;                 // handler entry
  CallWork work;                    // queue and inference summed over passes
  Batcher::Request::Timing timing;  // of the pass in flight
};

EncoderService::EncoderService(const ModelRegistry* models,
                               const ServerOptions& options, Batcher* batcher,
                               CompletionExecutor* completions,
                               ServiceHooks hooks)
    : models_(models),
      limits_(options.limits),
      default_deadline_(options.default_deadline),
      tokens_per_pass_(options.batcher.max_batch_tokens),
      cost_per_pass_(options.batcher.max_pass_tokens),
      rank_heads_reuse_(options.rank_heads_reuse_layers),
      batcher_(batcher),
      completions_(completions),
      hooks_(hooks) {}

grpc::ServerUnaryReactor* EncoderService::Encode(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  const absl::Time start = absl::Now();
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) {
    return FinishNow(calls_, s);
  }
  v1::EncodeRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request.model(), "model");
  if (!model.ok()) return FinishNow(calls_, model.status());
  absl::StatusOr<ValidatedEncode> validated =
      ValidateEncodeRequest(request, **model, limits_);
  if (!validated.ok()) return FinishNow(calls_, validated.status());

  grpc::ServerUnaryReactor* reactor = calls_.NewReactor();
  struct Labels {
    CallWork work;
    Batcher::Request::Timing timing;  // written by the batcher before done
  };
  auto labels = std::make_shared<Labels>();
  labels->work.model = (*model)->info->name;
  labels->work.sequences = static_cast<int64_t>(validated->tasks.size());
  for (const SequenceTask& task : validated->tasks) {
    labels->work.tokens += static_cast<int64_t>(task.token_ids.size());
  }
  labels->work.tokenization = absl::Now() - start;
  absl::Status submitted = SubmitEncode(
      *model, *std::move(validated),
      RequestDeadline(*context, default_deadline_),
      // The context lives until Finish, which only the completion calls.
      [context] { return context->IsCancelled(); }, &labels->timing,
      [this, context, reactor, response_bytes, labels,
       start](absl::StatusOr<v1::EncodeResponse> response) {
        labels->work.queue = labels->timing.queue;
        labels->work.inference = labels->timing.inference;
        hooks_.FinishWithWork(context, reactor, labels->work, start,
                              response.ok()
                                  ? Serialized(*response, response_bytes)
                                  : ToGrpcStatus(response.status()));
      });
  if (!submitted.ok()) {
    hooks_.FinishWithWork(context, reactor, labels->work, start,
                          ToGrpcStatus(submitted));
  }
  return reactor;
}

absl::Status EncoderService::SubmitEncode(
    const ServedModel* model, ValidatedEncode validated, absl::Time deadline,
    std::function<bool()> is_cancelled, Batcher::Request::Timing* timing,
    std::function<void(absl::StatusOr<v1::EncodeResponse>)> answer) {
  Batcher::Request job;
  job.model = model->index;
  job.tasks = std::move(validated.tasks);
  job.deadline = deadline;
  job.is_cancelled = std::move(is_cancelled);
  job.timing = timing;
  struct Labels {
    OutputSpec spec;
    std::vector<InputSequence> inputs;
  };
  auto labels = std::make_shared<Labels>(
      Labels{std::move(validated.spec), std::move(validated.inputs)});
  // Inference thread: hand the outputs over and return to the next pass.
  job.done = [this, model, labels, answer = std::move(answer)](
                 absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    const int64_t bytes = OutputBytes(outputs);
    completions_->Post(
        [model, labels, answer, outputs = std::move(outputs)]() mutable {
          if (!outputs.ok()) return answer(outputs.status());
          v1::EncodeResponse response;
          response.set_model(model->info->name);
          for (size_t i = 0; i < labels->inputs.size(); ++i) {
            absl::Status status = ToSequenceResult(
                labels->spec, model->info->config, labels->inputs[i],
                (*outputs)[i], response.add_results());
            if (!status.ok()) return answer(status);
          }
          outputs = absl::StatusOr<std::vector<SequenceOutput>>();  // free
          answer(std::move(response));
        },
        bytes);
  };
  return batcher_->Submit(std::move(job));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
EncoderService::EncodeStream(grpc::CallbackServerContext* context) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) {
    return new RefusedStream(ToGrpcStatus(s));
  }
  return new EncodeStreamReactor(
      context,
      [this](v1::EncodeRequest request, absl::Time deadline,
             std::function<bool()> is_cancelled,
             std::function<void(absl::StatusOr<v1::EncodeResponse>)> done) {
        absl::StatusOr<const ServedModel*> model =
            models_->Find(request.model(), "model");
        if (!model.ok()) return model.status();
        absl::StatusOr<ValidatedEncode> validated =
            ValidateEncodeRequest(request, **model, limits_);
        if (!validated.ok()) return validated.status();
        return SubmitEncode(*model, *std::move(validated), deadline,
                            std::move(is_cancelled), nullptr, std::move(done));
      },
      kStreamMessagesInFlight, default_deadline_, &calls_);
}

grpc::ServerUnaryReactor* EncoderService::ListModels(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  absl::Status status = hooks_.CheckToken(*context);
  v1::ListModelsRequest request;
  if (status.ok()) status = ParseRequest(*request_bytes, &request);
  if (!status.ok()) return FinishNow(calls_, status);
  v1::ListModelsResponse response;
  for (int index : models_->ListOrder()) {
    ToProtoModelInfo(models_->served(index), response.add_models());
  }
  if (models_->default_index() >= 0) {
    response.set_default_model(
        models_->served(models_->default_index()).info->name);
  }
  return FinishNowWith(calls_, response, response_bytes);
}

grpc::ServerUnaryReactor* EncoderService::GetModelInfo(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  absl::Status status = hooks_.CheckToken(*context);
  if (!status.ok()) return FinishNow(calls_, status);
  v1::GetModelInfoRequest request;
  status = ParseRequest(*request_bytes, &request);
  if (!status.ok()) return FinishNow(calls_, status);
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request.model(), "model");
  if (!model.ok()) return FinishNow(calls_, model.status());
  v1::ModelInfo response;
  ToProtoModelInfo(**model, &response);
  return FinishNowWith(calls_, response, response_bytes);
}

grpc::ServerUnaryReactor* EncoderService::Tokenize(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  // No model work: answered here, like validation.
  const absl::Time start = absl::Now();
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) {
    return FinishNow(calls_, s);
  }
  v1::TokenizeRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request.model(), "model");
  if (!model.ok()) return FinishNow(calls_, model.status());
  absl::StatusOr<std::vector<InputSequence>> inputs =
      ValidateTokenizeRequest(request, **model, limits_);
  if (!inputs.ok()) return FinishNow(calls_, inputs.status());
  v1::TokenizeResponse response;
  CallWork work;
  work.model = (*model)->info->name;
  work.sequences = static_cast<int64_t>(inputs->size());
  for (InputSequence& input : *inputs) {
    work.tokens += static_cast<int64_t>(input.ids.size());
    ToTokenizedSequence(input, response.add_results());
  }
  work.tokenization = absl::Now() - start;
  grpc::ServerUnaryReactor* reactor = calls_.NewReactor();
  hooks_.FinishWithWork(context, reactor, work, start,
                        Serialized(response, response_bytes));
  return reactor;
}

grpc::ServerUnaryReactor* EncoderService::RankHeads(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  const absl::Time start = absl::Now();
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) {
    return FinishNow(calls_, s);
  }
  v1::RankHeadsRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return FinishNow(calls_, s);
  }
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request.model(), "model");
  if (!model.ok()) return FinishNow(calls_, model.status());
  absl::StatusOr<RankHeadsJob> job =
      ValidateRankHeadsRequest(request, **model, limits_, tokens_per_pass_,
                               cost_per_pass_, rank_heads_reuse_);
  if (!job.ok()) return FinishNow(calls_, job.status());
  auto call = std::make_shared<RankHeadsCall>(*std::move(job));
  call->model = *model;
  call->context = context;
  call->reactor = calls_.NewReactor();
  call->response = response_bytes;
  call->deadline = RequestDeadline(*context, default_deadline_);
  call->start = start;
  call->work.model = call->model->info->name;
  call->work.sequences = request.sequences_size();
  // Its compute tokens: every forward pass of the ranking.
  call->work.tokens = call->job.ablation_tokens();
  call->work.tokenization = absl::Now() - start;
  grpc::ServerUnaryReactor* reactor = call->reactor;
  SubmitRankHeadsPass(std::move(call));
  return reactor;
}

void EncoderService::SubmitRankHeadsPass(std::shared_ptr<RankHeadsCall> call) {
  // The passes run one after another through the batcher as bulk work:
  // interactive requests that wait go first, so a ranking never holds them
  // up for longer than one pass of at most --max_pass_tokens of work.
  Batcher::Request pass;
  pass.model = call->model->index;
  pass.bulk = true;
  pass.tasks = call->job.NextPass();
  pass.deadline = call->deadline;
  grpc::CallbackServerContext* context = call->context;
  pass.is_cancelled = [context] { return context->IsCancelled(); };
  pass.timing = &call->timing;
  grpc::ServerUnaryReactor* reactor = call->reactor;
  pass.done = [this,
               call](absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    const int64_t bytes = OutputBytes(outputs);
    completions_->Post(
        [this, call, outputs = std::move(outputs)]() mutable {
          call->work.queue += call->timing.queue;
          call->work.inference += call->timing.inference;
          auto answer = [&](const grpc::Status& status) {
            hooks_.FinishWithWork(call->context, call->reactor, call->work,
                                  call->start, status);
          };
          if (!outputs.ok()) return answer(ToGrpcStatus(outputs.status()));
          absl::Status added = call->job.AddResults(*outputs);
          if (!added.ok()) {
            return answer(ToGrpcStatus(absl::InternalError(
                absl::StrCat("RankHeads: ", added.message()))));
          }
          if (!call->job.done()) {
            SubmitRankHeadsPass(std::move(call));
            return;
          }
          absl::StatusOr<HeadRanking> ranking = call->job.Result();
          if (!ranking.ok()) {
            return answer(ToGrpcStatus(absl::InternalError(
                absl::StrCat("RankHeads: ", ranking.status().message()))));
          }
          v1::RankHeadsResponse response;
          ToRankHeadsResponse(*ranking, call->model->info->name, &response);
          answer(Serialized(response, call->response));
        },
        bytes);
  };
  absl::Status submitted = batcher_->Submit(std::move(pass));
  if (!submitted.ok()) {
    hooks_.FinishWithWork(context, reactor, call->work, call->start,
                          ToGrpcStatus(submitted));
  }
}

}  // namespace attnserve
