#include "server/wire.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/utf8.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace attnserve {

std::optional<std::string> FindInvalidUtf8Field(
    absl::string_view bytes, const google::protobuf::Descriptor& type) {
  // UnknownFieldSet reads any protobuf without checking strings, so the walk
  // can look at what the typed parser refused.
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return std::nullopt;
  }
  std::map<int, int> seen;  // field number → occurrences so far
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    const int index = seen[f.number()]++;
    const google::protobuf::FieldDescriptor* field =
        type.FindFieldByNumber(f.number());
    if (field == nullptr ||
        f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      continue;
    }
    const std::string name = field->is_repeated()
                                 ? absl::StrCat(field->name(), "[", index, "]")
                                 : field->name();
    const std::string& value = f.length_delimited();
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      const int64_t bad = FirstInvalidUtf8(value);
      if (bad >= 0) {
        return absl::StrFormat(
            "%s is not valid UTF-8: bad sequence at byte offset %d (byte "
            "0x%02X)",
            name, bad, static_cast<unsigned char>(value[bad]));
      }
    } else if (field->type() ==
               google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      std::optional<std::string> inner =
          FindInvalidUtf8Field(value, *field->message_type());
      if (inner.has_value()) return absl::StrCat(name, ".", *inner);
    }
  }
  return std::nullopt;
}

absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; Deserialize consumes it
  // protobuf logs an ERROR line to stderr for every string field that is not
  // UTF-8; the client gets a better message below, and a client sending such
  // requests in a loop would otherwise fill the server's log (the request
  // fuzzer wrote 23 MB of those lines in 20 s).
  google::protobuf::LogSilencer quiet;
  grpc::Status status =
      grpc::SerializationTraits<google::protobuf::Message>::Deserialize(
          &copy, message);
  if (status.ok()) return absl::OkStatus();
  // Rare: flatten the bytes to say what is wrong.
  std::vector<grpc::Slice> slices;
  std::string flat;
  if (bytes.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      flat.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  std::optional<std::string> bad_string =
      FindInvalidUtf8Field(flat, *message->GetDescriptor());
  if (bad_string.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        *bad_string, " (protobuf strings must be UTF-8; send text as UTF-8)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "the request is not a valid ", message->GetDescriptor()->full_name(),
      " (", bytes.Length(), " bytes): ", status.error_message()));
}

absl::Status SerializeResponse(const google::protobuf::Message& message,
                               grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  grpc::Status status =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(
          message, bytes, &own_buffer);
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot serialize the ",
                                          message.GetDescriptor()->full_name(),
                                          ": ", status.error_message()));
}

}  // namespace attnserve
