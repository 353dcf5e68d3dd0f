// JSON for programs: what attnctl prints with --json. Decoded tensors are
// nested arrays by shape; other messages are proto3 JSON with the .proto
// field names. Also the string escaper the attention page builds on.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_CLIENT_JSON_FORMAT_H_
#define ATTNSERVE_CLIENT_JSON_FORMAT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/tensors.h"
#include "google/protobuf/message.h"
#include "proto/attnserve.pb.h"

namespace attnserve::client {

// A quoted JSON string: '"', '\\' and control characters escaped; other
// bytes (UTF-8 included) as they are.
std::string JsonString(absl::string_view s);

std::string JsonNumber(double v);  // null when not finite

// {"dtype": ..., "shape": [...], "values": nested by shape}
std::string JsonTensor(const Array& a);

// An EncodeResponse with every tensor decoded (JsonTensor), the tokens,
// head_stats and layer_stats.
absl::StatusOr<std::string> EncodeResponseJson(
    const v1::EncodeResponse& response);

// A message in proto3 JSON with the .proto field names and default values
// printed (so layer 0 shows as "layer": 0).
std::string JsonMessage(const google::protobuf::Message& message);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_JSON_FORMAT_H_
