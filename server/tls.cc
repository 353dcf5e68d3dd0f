#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace attnserve {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// OpenSSL's last error as text, and the error queue cleared.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(runtime/int)
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

absl::Status BadFile(const char* flag, const std::string& path,
                     absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", path, ": ", why));
}

absl::StatusOr<std::string> Read(const char* flag, const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", bytes.status().message()));
  }
  return bytes;
}

std::unique_ptr<BIO, BioFree> Bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Checks that the certificate and key files parse and belong together, and
// that the CA file (if any) holds a certificate.
absl::Status CheckFiles(const TlsOptions& o) {
  absl::StatusOr<std::string> cert_pem = Read("tls_cert", o.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = Read("tls_key", o.key_file);
  if (!key_pem.ok()) return key_pem.status();
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(Bio(*cert_pem).get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return BadFile(
        "tls_cert", o.cert_file,
        absl::StrCat("not a PEM certificate (", OpenSslError(), ")"));
  }
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(Bio(*key_pem).get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return BadFile("tls_key", o.key_file,
                   absl::StrCat("not an unencrypted PEM private key (",
                                OpenSslError(), ")"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return BadFile(
        "tls_key", o.key_file,
        absl::StrCat("is not the key of the certificate in --tls_cert=",
                     o.cert_file));
  }
  if (!o.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca_pem =
        Read("tls_client_ca", o.client_ca_file);
    if (!ca_pem.ok()) return ca_pem.status();
    std::unique_ptr<X509, X509Free> ca(
        PEM_read_bio_X509(Bio(*ca_pem).get(), nullptr, nullptr, nullptr));
    if (ca == nullptr) {
      return BadFile(
          "tls_client_ca", o.client_ca_file,
          absl::StrCat("holds no PEM certificate (", OpenSslError(), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsOptions& o) {
  if (o.cert_file.empty() && o.key_file.empty()) {
    if (!o.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca needs TLS: give --tls_cert and --tls_key too");
    }
    return grpc::InsecureServerCredentials();
  }
  if (o.cert_file.empty() || o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key");
  }
  if (o.refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--tls_refresh_interval must be at least 1s");
  }
  if (absl::Status s = CheckFiles(o); !s.ok()) return s;
  const auto refresh_s =
      static_cast<unsigned int>(absl::ToInt64Seconds(o.refresh_interval));
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (o.client_ca_file.empty()) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            o.key_file, o.cert_file, refresh_s);
  } else {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            o.key_file, o.cert_file, o.client_ca_file, refresh_s);
  }
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (o.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace attnserve
