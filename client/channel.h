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
//
// TLS (README "Operate"): the server verified against given roots (or the
// system's), optionally under another name than the target's host, and a
// client certificate for servers that require one (mTLS).
#ifndef ATTNSERVE_CLIENT_CHANNEL_H_
#define ATTNSERVE_CLIENT_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace attnserve::client {

struct ChannelOptions {
  std::string target = "localhost:50051";
  // A connection of this channel's own (attnctl bench: one per worker).
  // Otherwise gRPC shares one TCP connection among channels to one address
  // made with equal arguments.
  bool own_connection = false;
  // "round_robin" (spread calls over every address of the target) or
  // "pick_first" (one connection, gRPC's own default).
  std::string load_balancing = "round_robin";
  // Attempts per call when a replica answers UNAVAILABLE (1 = no retries).
  int max_attempts = 5;
  // TLS instead of plaintext. The PEM contents (ReadTlsFiles), not paths:
  // roots to verify the server with (empty: the system's), and the client
  // certificate chain and key (empty: none).
  bool tls = false;
  std::string pem_root_certs;
  std::string pem_cert_chain;
  std::string pem_private_key;
  // The name the server's certificate must carry; empty: the target's host.
  std::string server_name;
};

// The environment variable LoadToken reads when no file is given.
inline constexpr char kTokenEnv[] = "ATTNSERVE_TOKEN";

// The gRPC service config for `options`: load balancing, health checking of
// attnserve.v1.Encoder, and the retry policy of its methods.
std::string ServiceConfigJson(const ChannelOptions& options);

// A channel (plaintext, or TLS with options.tls) that accepts responses of
// any size (attention maps can be large; the server bounds them).
std::shared_ptr<grpc::Channel> Connect(const ChannelOptions& options);

// Reads the PEM files into `options`: `ca_file` into pem_root_certs,
// `cert_file` and `key_file` into the client certificate (empty names read
// nothing). INVALID_ARGUMENT naming the flag (--ca, --cert, --key) when a
// file cannot be read.
absl::Status ReadTlsFiles(const std::string& ca_file,
                          const std::string& cert_file,
                          const std::string& key_file, ChannelOptions* options);

// The bearer token: the content of `token_file`, else $ATTNSERVE_TOKEN, with
// surrounding whitespace dropped; empty when neither is given.
// INVALID_ARGUMENT naming --token-file when the file cannot be read or holds
// no token (or more than one line).
absl::StatusOr<std::string> LoadToken(const std::string& token_file);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_CHANNEL_H_
