#include "server/server.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace attnserve {

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, std::unique_ptr<Encoder> encoder) {
  if (encoder == nullptr) {
    return absl::InvalidArgumentError("Server::Start needs a loaded encoder");
  }
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->encoder_ = std::move(encoder);
  Encoder* model = server->encoder_.get();
  server->batcher_ = std::make_unique<Batcher>(
      options.batcher, [model](absl::Span<const SequenceTask> tasks) {
        return model->Forward(tasks);
      });
  server->service_ = std::make_unique<EncoderService>(
      model->info(), server->options_, server->batcher_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would
  // start and silently share its traffic. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(server->service_.get());
  const int64_t max_send =
      options.limits.max_response_bytes + kResponseHeadroomBytes;
  builder.SetMaxSendMessageSize(
      static_cast<int>(std::min<int64_t>(max_send, INT_MAX)));
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->batcher_->Shutdown();
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
  return server;
}

Server::~Server() { Shutdown(options_.shutdown_grace); }

void Server::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    // The health service reports NOT_SERVING from here on. Blocks until every
    // call in flight has finished: the batcher is still running and answers
    // them; after `grace` gRPC cancels the rest, which the batcher drops.
    grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  }
  if (batcher_ != nullptr) batcher_->Shutdown();
}

}  // namespace attnserve
