#include "client/channel.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::client {
namespace {

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", bytes.status().message()));
  }
  return bytes;
}

}  // namespace

std::string ServiceConfigJson(const ChannelOptions& options) {
  // gRPC refuses a retryPolicy with maxAttempts < 2 (and then every call
  // fails INVALID_ARGUMENT), so one attempt means no policy at all.
  if (options.max_attempts < 2) {
    return absl::StrFormat(
        R"({"loadBalancingConfig": [{"%s": {}}],)"
        R"( "healthCheckConfig": {"serviceName": "%s"}})",
        options.load_balancing, v1::Encoder::service_full_name());
  }
  // Backoff: 50 ms doubling to 1 s, so five attempts span ~0.75 s, about the
  // time a Kubernetes endpoint update takes to reach a client's resolver.
  // The Open Inference Protocol's calls are idempotent too.
  return absl::StrFormat(
      R"({"loadBalancingConfig": [{"%s": {}}],)"
      R"( "healthCheckConfig": {"serviceName": "%s"},)"
      R"( "methodConfig": [{"name": [{"service": "%s"},)"
      R"( {"service": "inference.GRPCInferenceService"}],)"
      R"( "retryPolicy": {"maxAttempts": %d, "initialBackoff": "0.05s",)"
      R"( "maxBackoff": "1s", "backoffMultiplier": 2,)"
      R"( "retryableStatusCodes": ["UNAVAILABLE"]}}]})",
      options.load_balancing, v1::Encoder::service_full_name(),
      v1::Encoder::service_full_name(), options.max_attempts);
}

std::shared_ptr<grpc::Channel> Connect(const ChannelOptions& options) {
  grpc::ChannelArguments args;
  if (options.own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetServiceConfigJSON(ServiceConfigJson(options));
  if (!options.tls) {
    return grpc::CreateCustomChannel(options.target,
                                     grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.pem_root_certs;
  ssl.pem_cert_chain = options.pem_cert_chain;
  ssl.pem_private_key = options.pem_private_key;
  if (!options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  return grpc::CreateCustomChannel(options.target, grpc::SslCredentials(ssl),
                                   args);
}

absl::Status ReadTlsFiles(const std::string& ca_file,
                          const std::string& cert_file,
                          const std::string& key_file,
                          ChannelOptions* options) {
  struct File {
    const char* flag;
    const std::string& path;
    std::string* pem;
  };
  for (const File& f : {File{"ca", ca_file, &options->pem_root_certs},
                        File{"cert", cert_file, &options->pem_cert_chain},
                        File{"key", key_file, &options->pem_private_key}}) {
    if (f.path.empty()) continue;
    absl::StatusOr<std::string> pem = ReadFlagFile(f.flag, f.path);
    if (!pem.ok()) return pem.status();
    *f.pem = *std::move(pem);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LoadToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv(kTokenEnv);
    return env == nullptr ? std::string()
                          : std::string(absl::StripAsciiWhitespace(env));
  }
  absl::StatusOr<std::string> text = ReadFlagFile("token-file", token_file);
  if (!text.ok()) return text.status();
  const std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file: ", token_file, " holds no token"));
  }
  if (token.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--token-file: ", token_file, " holds more than one line"));
  }
  return token;
}

}  // namespace attnserve::client
