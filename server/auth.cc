#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file.h"

namespace attnserve {
namespace {

TokenSet::Digest Sha256(absl::string_view text) {
  TokenSet::Digest digest{};
  unsigned int size = 0;
  // EVP_Digest with SHA-256 cannot fail for in-memory input short of
  // memory exhaustion; a zero digest then matches no stored token (those
  // went through the same call at load and were checked).
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(),
             nullptr);
  return digest;
}

bool PrintableAscii(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<TokenSet> TokenSet::Parse(absl::string_view text,
                                         absl::string_view source) {
  TokenSet set;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty()) continue;
    if (!PrintableAscii(token)) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, " line ", line_number,
          ": a token must be printable ASCII (gRPC metadata cannot carry "
          "other bytes)"));
    }
    set.digests_.push_back(Sha256(token));
  }
  if (set.digests_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " holds no token (one per line)"));
  }
  return set;
}

bool TokenSet::Contains(absl::string_view token) const {
  const Digest presented = Sha256(token);
  int found = 0;
  for (const Digest& digest : digests_) {
    found |= CRYPTO_memcmp(presented.data(), digest.data(), digest.size()) == 0;
  }
  return found != 0;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Load(
    const std::string& path) {
  std::unique_ptr<Authenticator> auth(new Authenticator(path));
  absl::StatusOr<size_t> loaded = auth->Reload();
  if (!loaded.ok()) return loaded.status();
  return auth;
}

absl::StatusOr<size_t> Authenticator::Reload() {
  absl::StatusOr<std::string> text = ReadFile(path_);
  if (!text.ok()) return text.status();
  absl::StatusOr<TokenSet> tokens = TokenSet::Parse(*text, path_);
  if (!tokens.ok()) return tokens.status();
  auto shared = std::make_shared<const TokenSet>(*std::move(tokens));
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(shared);
  return tokens_->size();
}

absl::Status Authenticator::Check(
    const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  const auto [first, last] = metadata.equal_range(kAuthorizationHeader);
  if (first == last) {
    return absl::UnauthenticatedError(
        "this server needs a token: send the metadata \"authorization: "
        "Bearer <token>\"");
  }
  if (std::next(first) != last) {
    return absl::UnauthenticatedError(
        "the call has more than one \"authorization\" metadata entry; send "
        "exactly one \"authorization: Bearer <token>\"");
  }
  const absl::string_view value(first->second.data(), first->second.size());
  // RFC 7235: the scheme is case-insensitive.
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the \"authorization\" metadata must be \"Bearer <token>\"");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(value.substr(kScheme.size()));
  std::shared_ptr<const TokenSet> tokens;
  {
    absl::MutexLock lock(&mu_);
    tokens = tokens_;
  }
  if (token.empty() || !tokens->Contains(token)) {
    return absl::UnauthenticatedError(
        "the token in the \"authorization\" metadata is not accepted by this "
        "server");
  }
  return absl::OkStatus();
}

absl::Status CheckCallToken(const Authenticator* auth,
                            const grpc::ServerContextBase& context) {
  if (auth == nullptr) return absl::OkStatus();
  return auth->Check(context);
}

}  // namespace attnserve
