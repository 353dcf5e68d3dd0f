// Builds and runs the gRPC server for the loaded models (one or several, see
// server/model_registry.h; they share one Batcher): the attnserve.v1
// Encoder service, the Open Inference Protocol (inference.
// GRPCInferenceService), the standard health service and server reflection;
// and what an operator needs around them (README "Operate"): TLS, bearer
// tokens, Prometheus metrics with /healthz, the access log.
//
// Threads: Start() and Shutdown() from the owning thread (main or a test);
// port(), batcher(), StartDraining() and ReloadAuthTokens() from any thread.
#ifndef ATTNSERVE_SERVER_SERVER_H_
#define ATTNSERVE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "model/encoder/encoder.h"
#include "model/text/text_tokenizer.h"
#include "server/access_log.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/call_interceptor.h"
#include "server/completion_executor.h"
#include "server/encoder_service.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/oip_service.h"
#include "server/options.h"
#include "server/validate.h"

namespace attnserve {

// The tokenizer of model directory `dir`, for serving `info`'s model:
// LoadTextTokenizer (by the model's model_type), then a check that every
// vocab id is below the model's vocab_size. NOT_FOUND when the directory has
// no tokenizer files; other errors say what is wrong with the files.
absl::StatusOr<std::unique_ptr<TextTokenizer>> LoadTokenizerFor(
    const std::string& dir, const ModelInfo& info);

// The services every Server registers besides its own two; both answer
// without a token.
inline constexpr char kHealthService[] = "grpc.health.v1.Health";
inline constexpr char kReflectionService[] =
    "grpc.reflection.v1alpha.ServerReflection";

class Server {
 public:
  // Listens on options.address (port 0: a free port, see port()) and starts
  // the inference and completion threads, serving every model of `models`.
  // UNAVAILABLE if the address (or the metrics address) cannot be bound;
  // INVALID_ARGUMENT for TLS files or a tokens file that cannot be used.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, std::unique_ptr<ModelRegistry> models);
  // One model. `tokenizer` is its vocab (LoadTokenizerFor), or why there is
  // none: then the server still serves token ids, and refuses text with
  // FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, std::unique_ptr<Encoder> encoder,
      absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer);

  // Shutdown(options.shutdown_grace).
  ~Server();

  // The first step of a graceful stop behind a load balancer: the health
  // service reports NOT_SERVING (overall and for attnserve.v1.Encoder), and
  // so does /healthz (503), so probes and health-checking clients stop
  // sending here, while calls are
  // still accepted and answered as usual. Shutdown() follows after the
  // operator's drain delay. Idempotent.
  void StartDraining();

  // Stops accepting calls, lets the calls in flight finish (the batcher and
  // the completion thread keep running; after `grace` gRPC cancels what is
  // left), then drains and joins the batcher, then the completion thread.
  // Idempotent.
  void Shutdown(absl::Duration grace);

  int port() const { return port_; }
  // The port of /metrics and /healthz; 0 without options.metrics_address.
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }

  // Re-reads options.auth_tokens_file: the number of tokens now accepted.
  // FAILED_PRECONDITION when the server has no tokens file; on a bad file
  // the old tokens stay in force.
  absl::StatusOr<size_t> ReloadAuthTokens();
  const ModelRegistry& models() const { return *models_; }
  // The first served model's (the only one's, for a single model).
  const ModelInfo& model_info() const { return *models_->served(0).info; }
  // Null when the first model has no tokenizer; tokenizer_status() says why.
  const TextTokenizer* tokenizer() const {
    return models_->served(0).tokenizer;
  }
  const absl::Status& tokenizer_status() const {
    return models_->tokenizer_status(0);
  }
  Batcher& batcher() { return *batcher_; }
  CompletionExecutor& completions() { return *completions_; }

 private:
  Server() = default;

  ServerOptions options_;
  int port_ = 0;
  // Destroyed bottom-up: gRPC server first, the models last. The completion
  // thread outlives the batcher, whose last answers it runs.
  std::unique_ptr<ModelRegistry> models_;
  // Operating parts, each null when off. The metrics listen to the batcher
  // and, like the board and the access log, to the gRPC server's call
  // interceptor: they outlive both.
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<AccessLog> access_log_;
  CallWorkBoard work_board_;
  std::unique_ptr<CompletionExecutor> completions_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<EncoderService> service_;
  std::unique_ptr<OipService> oip_service_;
  std::unique_ptr<grpc::Server> grpc_server_;

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_SERVER_H_
