// inference.GRPCInferenceService, the Open Inference Protocol (KServe v2),
// served on the same port as attnserve.v1 and through the same validator,
// batcher, encoder and conversion: ModelInfer is an Encode in another
// envelope (server/oip.h says how the tensors map).
//
// Threads: as EncoderService. ModelInfer is a raw callback (it parses the
// request itself, see server/wire.h); the small RPCs are typed callbacks
// answered on gRPC's threads. The inference thread hands outputs to the
// completion thread, which builds the response and finishes the call.
#ifndef ATTNSERVE_SERVER_OIP_SERVICE_H_
#define ATTNSERVE_SERVER_OIP_SERVICE_H_

#include <atomic>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/inference.grpc.pb.h"
#include "server/batcher.h"
#include "server/call_tracker.h"
#include "server/completion_executor.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/service_hooks.h"
#include "server/validate.h"

namespace attnserve {

class OipService final
    : public inference::GRPCInferenceService::WithRawCallbackMethod_ModelInfer<
          inference::GRPCInferenceService::CallbackService> {
 public:
  // As EncoderService: `models`, `batcher` and `completions` outlive the
  // service; each request's model_name (ModelReady's and ModelMetadata's
  // name) picks one of `models`. `hooks`: the token check (every method
  // needs one) and where ModelInfer's work goes.
  OipService(const ModelRegistry* models, const ServerOptions& options,
             Batcher* batcher, CompletionExecutor* completions,
             ServiceHooks hooks = {});

  // ServerReady and ModelReady say false from here on (the server drains).
  void SetNotReady() { ready_ = false; }
  const CallTracker& calls() const { return calls_; }

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* context,
      const inference::ServerLiveRequest* request,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* context,
      const inference::ServerReadyRequest* request,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* context,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context,
      const inference::ServerMetadataRequest* request,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

 private:
  grpc::ServerUnaryReactor* Answer(const absl::Status& status);

  CallTracker calls_;
  std::atomic<bool> ready_{true};
  const ModelRegistry* const models_;
  const RequestLimits limits_;
  const absl::Duration default_deadline_;
  Batcher* const batcher_;
  CompletionExecutor* const completions_;
  const ServiceHooks hooks_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_OIP_SERVICE_H_
