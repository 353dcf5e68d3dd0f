// Request and response bytes ↔ protobuf messages for the service's raw
// callback handlers.
//
// Why the service parses requests itself: gRPC's typed callback handlers
// answer a request protobuf cannot parse with UNIMPLEMENTED and no message,
// and protobuf refuses every proto3 string that is not valid UTF-8 — so a
// client sending broken text would never learn what is wrong. ParseRequest
// refuses such a request with INVALID_ARGUMENT naming the field and the byte
// offset, as the tokenizer does for text it cannot read.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_SERVER_WIRE_H_
#define ATTNSERVE_SERVER_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"

namespace attnserve {

// The first string field of `bytes` (a serialized `type`) that is not valid
// UTF-8, as "sequences[1].text is not valid UTF-8: bad sequence at byte
// offset 2 (byte 0xFF)"; nullopt when there is none (or the bytes are not
// even a protobuf message).
std::optional<std::string> FindInvalidUtf8Field(
    absl::string_view bytes, const google::protobuf::Descriptor& type);

// Parses `bytes` into `message`. INVALID_ARGUMENT when protobuf refuses
// them: naming the string field that is not UTF-8, or saying the bytes are
// not a `message`'s type.
absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message);

// Serializes `message` into `bytes`. INTERNAL if protobuf cannot (e.g. over
// 2 GiB, which the response size limit prevents).
absl::Status SerializeResponse(const google::protobuf::Message& message,
                               grpc::ByteBuffer* bytes);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_WIRE_H_
