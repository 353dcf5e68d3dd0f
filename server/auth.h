// Bearer-token authentication: `authorization: Bearer <token>` metadata
// checked against the tokens of --auth_tokens_file.
//
// The tokens are held only as SHA-256 digests (OpenSSL's libcrypto) and a
// presented token is hashed and compared with every digest in constant time
// (CRYPTO_memcmp, no early exit), so neither memory dumps nor response
// timing give a token away. Messages never echo what the client sent.
//
// Where it is checked: first thing in every handler of our services,
// through CheckCallToken (ServiceHooks::CheckToken, server/service_hooks.h). gRPC 1.51 offers no better place that works on
// plaintext ports too: an AuthMetadataProcessor aborts on insecure
// credentials, and a server interceptor cannot fail a call (see
// server/call_interceptor.h). The standard health service stays open for
// probes, and so does reflection (it describes the API, which is public);
// tests/server_auth_test.cc asks every service reflection lists and fails
// when a service other than those two answers without a token.
//
// Threads: Check() and CheckCallToken() from any thread, Reload() from any
// thread (the SIGHUP handler); a reload swaps the whole set at once.
#ifndef ATTNSERVE_SERVER_AUTH_H_
#define ATTNSERVE_SERVER_AUTH_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

namespace attnserve {

// The metadata key, lower case as gRPC delivers it.
inline constexpr char kAuthorizationHeader[] = "authorization";

// SHA-256 digests of a set of tokens.
class TokenSet {
 public:
  using Digest = std::array<unsigned char, 32>;

  // One token per line; whitespace around a token (including "\r") is
  // dropped, blank lines are skipped. INVALID_ARGUMENT when there is no
  // token or a token is not printable ASCII (gRPC metadata cannot carry it),
  // naming the line, never the token. `source` names the file in messages.
  static absl::StatusOr<TokenSet> Parse(absl::string_view text,
                                        absl::string_view source);

  // Constant time in the token's content: hashes it, compares with every
  // digest.
  bool Contains(absl::string_view token) const;
  size_t size() const { return digests_.size(); }

 private:
  std::vector<Digest> digests_;
};

class Authenticator {
 public:
  // Reads the tokens of `path` (TokenSet::Parse). NOT_FOUND / INVALID_ARGUMENT
  // naming the file when it cannot be read or holds no usable token.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Load(
      const std::string& path);

  // Re-reads the file: the number of tokens now accepted. On an error the
  // tokens loaded before stay in force.
  absl::StatusOr<size_t> Reload();

  // OK when the call carries exactly one `authorization: Bearer <token>`
  // with an accepted token; UNAUTHENTICATED otherwise, with a message that
  // names the header and what is wrong, never the token.
  absl::Status Check(const grpc::ServerContextBase& context) const;

  const std::string& path() const { return path_; }

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenSet> tokens_ ABSL_GUARDED_BY(mu_);
};

// The one check of every handler: OK when `auth` is null (no tokens file),
// else auth->Check(context).
absl::Status CheckCallToken(const Authenticator* auth,
                            const grpc::ServerContextBase& context);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_AUTH_H_
