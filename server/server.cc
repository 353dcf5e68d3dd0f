#include "server/server.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "grpc/grpc.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "model/types.h"
#include "server/tls.h"

namespace attnserve {

absl::StatusOr<std::unique_ptr<TextTokenizer>> LoadTokenizerFor(
    const std::string& dir, const ModelInfo& info) {
  absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer =
      LoadTextTokenizer(dir, info.config.model_type);
  if (!tokenizer.ok()) return tokenizer.status();
  if ((*tokenizer)->vocab_size() > info.config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the vocab of ", dir, " has ", (*tokenizer)->vocab_size(),
        " tokens, more than the model's vocab_size = ", info.config.vocab_size,
        " (config.json): they do not belong together"));
  }
  return tokenizer;
}

namespace {

// "package.Service/Method" of every method of `services`, from protobuf's
// generated pool, where reflection finds them too: INTERNAL when a service
// has no descriptor there (reflection would list it and fail to describe
// it).
absl::StatusOr<absl::flat_hash_set<std::string>> MethodNames(
    const std::vector<std::string>& services) {
  absl::flat_hash_set<std::string> names;
  for (const std::string& service : services) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            service);
    if (descriptor == nullptr) {
      return absl::InternalError(absl::StrCat(
          "service ", service,
          " has no descriptor linked in: reflection could not describe it"));
    }
    for (int m = 0; m < descriptor->method_count(); ++m) {
      names.insert(absl::StrCat(service, "/", descriptor->method(m)->name()));
    }
  }
  return names;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, std::unique_ptr<Encoder> encoder,
    absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer) {
  if (encoder == nullptr) {
    return absl::InvalidArgumentError("Server::Start needs a loaded encoder");
  }
  std::vector<ModelRegistry::Model> models;
  models.push_back({std::move(encoder), std::move(tokenizer)});
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry =
      ModelRegistry::Create(std::move(models));
  if (!registry.ok()) return registry.status();
  return Start(options, *std::move(registry));
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, std::unique_ptr<ModelRegistry> models) {
  if (models == nullptr || models->size() == 0) {
    return absl::InvalidArgumentError("Server::Start needs a loaded model");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentialsFor(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  if (!options.auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authenticator>> auth =
        Authenticator::Load(options.auth_tokens_file);
    if (!auth.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_tokens_file: ", auth.status().message()));
    }
    server->auth_ = *std::move(auth);
  }
  if (!options.metrics_address.empty()) {
    std::vector<Metrics::ModelLabels> labels;
    for (int i = 0; i < models->size(); ++i) {
      const ModelInfo& info = *models->served(i).info;
      labels.push_back({info.name, PrecisionName(info.precision),
                        info.config.num_layers, info.config.num_heads,
                        info.config.hidden_size});
    }
    // The queue is read only at scrapes, which start with Listen() below,
    // after the batcher exists.
    server->metrics_ = std::make_unique<Metrics>(
        labels, [s = server.get()] { return s->batcher_->queued(); },
        [s = server.get()](int model) { return s->batcher_->queued(model); });
  }
  if (options.log_requests) {
    server->access_log_ = std::make_unique<AccessLog>(options.log_format);
  }
  server->models_ = std::move(models);
  const ModelRegistry* registry = server->models_.get();
  server->completions_ = std::make_unique<CompletionExecutor>(
      options.max_pending_completion_bytes);
  // One forward function per model, all on the one inference thread; the
  // batcher costs RankHeads' ablations, which start above layer 0, by the
  // layers they run of their model.
  std::vector<ForwardFn> forwards;
  BatcherOptions batcher_options = options.batcher;
  batcher_options.model_layers.clear();
  for (int i = 0; i < registry->size(); ++i) {
    Encoder* model = &registry->encoder(i);
    forwards.push_back([model](absl::Span<const SequenceTask> tasks) {
      return model->Forward(tasks);
    });
    batcher_options.model_layers.push_back(model->info().config.num_layers);
  }
  server->batcher_ = std::make_unique<Batcher>(
      batcher_options, std::move(forwards), server->metrics_.get());
  std::vector<CallObserver*> observers;
  if (server->metrics_ != nullptr) observers.push_back(server->metrics_.get());
  if (server->access_log_ != nullptr) {
    observers.push_back(server->access_log_.get());
  }
  ServiceHooks hooks;
  hooks.auth = server->auth_.get();
  if (!observers.empty()) hooks.work_board = &server->work_board_;
  server->oip_service_ = std::make_unique<OipService>(
      registry, server->options_, server->batcher_.get(),
      server->completions_.get(), hooks);
  server->service_ = std::make_unique<EncoderService>(
      registry, server->options_, server->batcher_.get(),
      server->completions_.get(), hooks);
  if (server->metrics_ != nullptr) {
    if (absl::Status s = server->metrics_->Listen(options.metrics_address);
        !s.ok()) {
      server->batcher_->Shutdown();
      server->completions_->Shutdown();
      return s;
    }
  }

  // Reflection describes services from protobuf's generated pool; gRPC's
  // health service is built on upb and puts no descriptor there. Referencing
  // the health.proto compiled into attnserve_health_proto links it in, so
  // reflection can describe every service it lists.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would
  // start and silently share its traffic. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->oip_service_.get());
  if (!observers.empty()) {
    // Every service registered here (the health and reflection services
    // come with the builder), so its calls are recorded by name.
    absl::StatusOr<absl::flat_hash_set<std::string>> methods =
        MethodNames({v1::Encoder::service_full_name(),
                     inference::GRPCInferenceService::service_full_name(),
                     kHealthService, kReflectionService});
    if (!methods.ok()) return methods.status();
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(std::make_unique<CallInterceptorFactory>(
        &server->work_board_, std::move(observers), *std::move(methods)));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  const int64_t max_send =
      options.limits.max_response_bytes + kResponseHeadroomBytes;
  builder.SetMaxSendMessageSize(
      static_cast<int>(std::min<int64_t>(max_send, INT_MAX)));
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->batcher_->Shutdown();
    server->completions_->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address,
                     " (address in use, or not a valid host:port?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      server->grpc_server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);  // overall ("")
    health->SetServingStatus(v1::Encoder::service_full_name(), true);
  }
  if (server->metrics_ != nullptr) server->metrics_->SetServing(true);
  return server;
}

Server::~Server() { Shutdown(options_.shutdown_grace); }

absl::StatusOr<size_t> Server::ReloadAuthTokens() {
  if (auth_ == nullptr) {
    return absl::FailedPreconditionError(
        "the server was started without --auth_tokens_file");
  }
  return auth_->Reload();
}

void Server::StartDraining() {
  if (metrics_ != nullptr) metrics_->SetServing(false);
  oip_service_->SetNotReady();
  grpc::HealthCheckServiceInterface* health =
      grpc_server_->GetHealthCheckService();
  if (health == nullptr) return;
  // NOT_SERVING for every service name, for good: no later SetServingStatus
  // can turn it back.
  health->Shutdown();
}

void Server::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    StartDraining();
    // gRPC's Shutdown refuses new calls and blocks until every open call has
    // ended; the batcher is still running and answers ours. After `grace` it
    // cancels the rest, which the batcher drops. Streams that never end on
    // their own (health Watch, reflection) would hold it for all of `grace`:
    // once every call of ours is answered, cancel them. The pause lets the
    // shutdown thread reach gRPC first, so nothing accepted after it (there
    // is nothing) could be cancelled.
    const absl::Time deadline = absl::Now() + grace;
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      grpc_server_->Shutdown(absl::ToChronoTime(deadline));
      stopped = true;
    });
    absl::SleepFor(absl::Milliseconds(200));
    if (service_->calls().WaitIdle(deadline) &&
        oip_service_->calls().WaitIdle(deadline) && !stopped) {
      grpc_server_cancel_all_calls(grpc_server_->c_server());
    }
    stopper.join();
  }
  // The batcher's last answers go through the completion thread: stop it
  // second.
  if (batcher_ != nullptr) batcher_->Shutdown();
  if (completions_ != nullptr) completions_->Shutdown();
}

}  // namespace attnserve
