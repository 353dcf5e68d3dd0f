// The server's transport credentials: plaintext, TLS, or TLS requiring
// client certificates (mTLS), from TlsOptions.
//
// TLS goes through gRPC's experimental TlsServerCredentials with a
// FileWatcherCertificateProvider, which re-reads the files every
// refresh_interval: a certificate rotated on disk reaches new connections
// without a restart. (gRPC 1.51 crashes unless watch_identity_key_cert_pairs()
// is called on the options; watch_root_certs() likewise for mTLS.)
//
// The files are checked once here with OpenSSL, because the provider only
// logs its errors and the server would then fail every handshake silently:
// each must parse, the key must belong to the certificate, and the CA file
// must hold at least one certificate.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_SERVER_TLS_H_
#define ATTNSERVE_SERVER_TLS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/options.h"

namespace attnserve {

// Insecure credentials when options.cert_file is empty. INVALID_ARGUMENT
// naming the flag and the file for a missing or unreadable file, a key that
// does not match the certificate, a key without a certificate (or the
// reverse), a client CA without a certificate, or a refresh interval under
// one second.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsOptions& options);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_TLS_H_
