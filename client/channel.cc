#include "client/channel.h"

#include "absl/strings/str_format.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::client {

std::string ServiceConfigJson(const ChannelOptions& options) {
  // Backoff: 50 ms doubling to 1 s, so five attempts span ~0.75 s, about the
  // time a Kubernetes endpoint update takes to reach a client's resolver.
  return absl::StrFormat(
      R"({"loadBalancingConfig": [{"%s": {}}],)"
      R"( "healthCheckConfig": {"serviceName": "%s"},)"
      R"( "methodConfig": [{"name": [{"service": "%s"}],)"
      R"( "retryPolicy": {"maxAttempts": %d, "initialBackoff": "0.05s",)"
      R"( "maxBackoff": "1s", "backoffMultiplier": 2,)"
      R"( "retryableStatusCodes": ["UNAVAILABLE"]}}]})",
      options.load_balancing, v1::Encoder::service_full_name(),
      v1::Encoder::service_full_name(), options.max_attempts);
}

std::shared_ptr<grpc::Channel> Connect(const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetServiceConfigJSON(ServiceConfigJson(options));
  return grpc::CreateCustomChannel(options.target,
                                   grpc::InsecureChannelCredentials(), args);
}

}  // namespace attnserve::client
