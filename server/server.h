// Builds and runs the gRPC server for one loaded Encoder: the attnserve.v1
// Encoder service, the standard health service and server reflection.
//
// Threads: Start() and Shutdown() from the owning thread (main or a test);
// port(), batcher() from any thread.
#ifndef ATTNSERVE_SERVER_SERVER_H_
#define ATTNSERVE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "model/encoder.h"
#include "server/batcher.h"
#include "server/encoder_service.h"
#include "server/options.h"

namespace attnserve {

class Server {
 public:
  // Listens on options.address (port 0: a free port, see port()) and starts
  // the inference thread. UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, std::unique_ptr<Encoder> encoder);

  // Shutdown(options.shutdown_grace).
  ~Server();

  // Stops accepting calls, lets the calls in flight finish (the batcher keeps
  // running; after `grace` gRPC cancels what is left), then drains and joins
  // the batcher. Idempotent.
  void Shutdown(absl::Duration grace);

  int port() const { return port_; }
  const ModelInfo& model_info() const { return encoder_->info(); }
  Batcher& batcher() { return *batcher_; }

 private:
  Server() = default;

  ServerOptions options_;
  int port_ = 0;
  // Destroyed bottom-up: gRPC server first, the model last.
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<EncoderService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_SERVER_H_
