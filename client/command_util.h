// Helpers the attnctl commands share (commands.cc, head_commands.cc): calls
// with the flags' deadline and token, their errors as absl::Status, and the
// small formatting pieces of the printed tables.
#ifndef ATTNSERVE_CLIENT_COMMAND_UTIL_H_
#define ATTNSERVE_CLIENT_COMMAND_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/commands.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::client {

// A call's gRPC status as absl::Status, code and message kept.
absl::Status FromGrpc(const grpc::Status& s);

// Every call: the --timeout deadline, and the bearer token when there is
// one.
void SetDeadline(const Flags& f, grpc::ClientContext* context);

// --verbose: the server's timings of a finished call, one line on stderr
// ("attnctl: Encode: x-total-time=5.100 ms ..."), in the order it sent them.
void PrintTimings(const Flags& f, absl::string_view method,
                  const grpc::ClientContext& context);

// A response that breaks the API's promises (DATA_LOSS, naming what).
absl::Status BadResponse(absl::string_view message);

absl::StatusOr<v1::ModelInfo> GetInfo(const Flags& f,
                                      v1::Encoder::StubInterface& stub);

absl::StatusOr<v1::EncodeResponse> CallEncode(const Flags& f,
                                              v1::Encoder::StubInterface& stub,
                                              const v1::EncodeRequest& request);

// The head_mask of the request: --mask with layer:* expanded to every head
// of the layer (which asks the server how many heads a layer has).
absl::StatusOr<std::vector<std::pair<int, int>>> ExpandMask(
    const Flags& f, v1::Encoder::StubInterface& stub);

// The request common to encode, similarity, heads and attention.
absl::StatusOr<v1::EncodeRequest> BaseRequest(const Flags& f,
                                              v1::Encoder::StubInterface& stub);

// Labels of the returned layers or heads: what was asked, or 0..n-1.
std::vector<int32_t> Labels(const std::vector<int32_t>& asked, int64_t n);

// The tokens of a result, or its ids as text when the server sent none.
std::vector<std::string> ResultTokens(const v1::SequenceResult& r,
                                      const std::vector<int32_t>& ids);

// "[CLS] the cat [SEP]", cut after `max` tokens.
std::string TokenLine(const std::vector<std::string>& tokens, size_t max = 40);

// What a sequence of the input is, for headings: the quoted text, or ids.
std::string InputLabel(const Flags& f, size_t s);

// "mean" for POOLING_MEAN.
std::string PoolingName(v1::Pooling p);

// Writes a page for --html; the error names the path.
absl::Status WriteHtml(const std::string& path, const std::string& html);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_COMMAND_UTIL_H_
