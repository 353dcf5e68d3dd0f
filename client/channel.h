// The client's channel to one server or to several replicas.
//
// `target` is any gRPC target: "host:port", "dns:///svc.ns:50051" (every
// address the name resolves to, e.g. a Kubernetes headless Service), or
// "ipv4:127.0.0.1:50051,127.0.0.1:50052". With round_robin each call goes to
// the next ready replica, and gRPC's client-side health checking takes a
// replica that reports NOT_SERVING (draining) out of the rotation at once.
// Every attnserve.v1 call is idempotent (a pure function of the request), so
// a call that fails with UNAVAILABLE (a replica that went away) is retried
// on another one.
#ifndef ATTNSERVE_CLIENT_CHANNEL_H_
#define ATTNSERVE_CLIENT_CHANNEL_H_

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"

namespace attnserve::client {

struct ChannelOptions {
  std::string target = "localhost:50051";
  // "round_robin" (spread calls over every address of the target) or
  // "pick_first" (one connection, gRPC's own default).
  std::string load_balancing = "round_robin";
  // Attempts per call when a replica answers UNAVAILABLE (1 = no retries).
  int max_attempts = 5;
};

// The gRPC service config for `options`: load balancing, health checking of
// attnserve.v1.Encoder, and the retry policy of its methods.
std::string ServiceConfigJson(const ChannelOptions& options);

// An insecure channel that accepts responses of any size (attention maps can
// be large; the server bounds them).
std::shared_ptr<grpc::Channel> Connect(const ChannelOptions& options);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_CHANNEL_H_
