#include "server/oip_service.h"

#include <memory>
#include <utility>
#include <vector>

#include "server/convert.h"
#include "server/deadline.h"
#include "server/grpc_status.h"
#include "server/oip.h"
#include "server/wire.h"

namespace attnserve {
OipService::OipService(const ModelRegistry* models,
                       const ServerOptions& options, Batcher* batcher,
                       CompletionExecutor* completions, ServiceHooks hooks)
    : models_(models),
      limits_(options.limits),
      default_deadline_(options.default_deadline),
      batcher_(batcher),
      completions_(completions),
      hooks_(hooks) {}

grpc::ServerUnaryReactor* OipService::Answer(const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = calls_.NewReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* OipService::ServerLive(
    grpc::CallbackServerContext* context,
    const inference::ServerLiveRequest* /*request*/,
    inference::ServerLiveResponse* response) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  response->set_live(true);
  return Answer(absl::OkStatus());
}

grpc::ServerUnaryReactor* OipService::ServerReady(
    grpc::CallbackServerContext* context,
    const inference::ServerReadyRequest* /*request*/,
    inference::ServerReadyResponse* response) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  response->set_ready(ready_);
  return Answer(absl::OkStatus());
}

grpc::ServerUnaryReactor* OipService::ModelReady(
    grpc::CallbackServerContext* context,
    const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request->name(), "name");
  // Every served model is loaded before the port opens: a model is ready
  // exactly while the server is.
  if (model.ok()) response->set_ready(ready_);
  return Answer(model.status());
}

grpc::ServerUnaryReactor* OipService::ServerMetadata(
    grpc::CallbackServerContext* context,
    const inference::ServerMetadataRequest* /*request*/,
    inference::ServerMetadataResponse* response) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  response->set_name("attnserve");
  response->set_version(ATTNSERVE_VERSION);
  // No protocol extensions (model repository, statistics, …) are served.
  return Answer(absl::OkStatus());
}

grpc::ServerUnaryReactor* OipService::ModelMetadata(
    grpc::CallbackServerContext* context,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  absl::StatusOr<const ServedModel*> model =
      models_->Find(request->name(), "name");
  if (model.ok()) ToModelMetadata(**model, response);
  return Answer(model.status());
}

grpc::ServerUnaryReactor* OipService::ModelInfer(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  const absl::Time start = absl::Now();
  if (absl::Status s = hooks_.CheckToken(*context); !s.ok()) return Answer(s);
  inference::ModelInferRequest request;
  if (absl::Status s = ParseRequest(*request_bytes, &request); !s.ok()) {
    return Answer(s);
  }
  absl::StatusOr<const ServedModel*> found =
      models_->Find(request.model_name(), "model_name");
  if (!found.ok()) return Answer(found.status());
  const ServedModel* model = *found;
  absl::StatusOr<OipRequest> oip = FromModelInfer(request, *model);
  if (!oip.ok()) return Answer(oip.status());
  // From here on it is an Encode: the same validation and limits.
  absl::StatusOr<ValidatedEncode> validated =
      ValidateEncodeRequest(oip->encode, *model, limits_);
  if (!validated.ok()) return Answer(validated.status());
  if (absl::Status s = SetPaddedLength(validated->inputs, model->info->config,
                                       limits_, &*oip);
      !s.ok()) {
    return Answer(s);
  }
  for (SequenceTask& task : validated->tasks) {
    task.want_pooler_output = oip->pooler_output;
  }

  grpc::ServerUnaryReactor* reactor = calls_.NewReactor();
  Batcher::Request job;
  job.model = model->index;
  job.tasks = std::move(validated->tasks);
  job.deadline = RequestDeadline(*context, default_deadline_);
  job.is_cancelled = [context] { return context->IsCancelled(); };
  struct Call {
    OipRequest oip;
    OutputSpec spec;
    std::vector<InputSequence> inputs;
    std::string id;
    CallWork work;
    Batcher::Request::Timing timing;  // written by the batcher before done
  };
  auto call = std::make_shared<Call>(Call{*std::move(oip),
                                          std::move(validated->spec),
                                          std::move(validated->inputs),
                                          request.id(),
                                          {},
                                          {}});
  call->work.model = model->info->name;
  call->work.sequences = static_cast<int64_t>(job.tasks.size());
  for (const SequenceTask& task : job.tasks) {
    call->work.tokens += static_cast<int64_t>(task.token_ids.size());
  }
  call->work.tokenization = absl::Now() - start;
  job.timing = &call->timing;
  job.done = [this, model, context, reactor, response_bytes, call,
              start](absl::StatusOr<std::vector<SequenceOutput>> outputs) {
    int64_t bytes = 0;
    if (outputs.ok()) {
      for (const SequenceOutput& o : *outputs) {
        bytes += 4 * (o.hidden.size() + o.attention.size() +
                      o.embedding.size() + o.pooler_output.size());
      }
    }
    completions_->Post(
        [this, model, context, reactor, response_bytes, call, start,
         outputs = std::move(outputs)]() mutable {
          call->work.queue = call->timing.queue;
          call->work.inference = call->timing.inference;
          auto answer = [&](const absl::Status& status) {
            hooks_.FinishWithWork(context, reactor, call->work, start,
                                  ToGrpcStatus(status));
          };
          if (!outputs.ok()) return answer(outputs.status());
          v1::EncodeResponse results;
          std::vector<std::vector<float>> poolers;
          for (size_t i = 0; i < call->inputs.size(); ++i) {
            poolers.push_back(std::move((*outputs)[i].pooler_output));
            absl::Status status = ToSequenceResult(
                call->spec, model->info->config, call->inputs[i], (*outputs)[i],
                results.add_results());
            if (!status.ok()) return answer(status);
          }
          outputs = absl::StatusOr<std::vector<SequenceOutput>>();  // free
          inference::ModelInferResponse response;
          response.set_id(call->id);
          absl::Status status = ToModelInferResponse(
              call->oip, results, poolers, *model->info, &response);
          if (status.ok()) status = SerializeResponse(response, response_bytes);
          answer(status);
        },
        bytes);
  };
  const CallWork work = call->work;  // `job` (and `call`) move on
  absl::Status submitted = batcher_->Submit(std::move(job));
  if (!submitted.ok()) {
    hooks_.FinishWithWork(context, reactor, work, start,
                          ToGrpcStatus(submitted));
  }
  return reactor;
}

}  // namespace attnserve
