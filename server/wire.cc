#include "server/wire.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace attnserve {

int64_t FirstInvalidUtf8(absl::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const int64_t n = bytes.size();
  int64_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte (RFC 3629 table).
    int len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // no overlong forms
      if (c == 0xf4) hi = 0x8f;  // ≤ U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (int k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xbf) return i;
    }
    i += len;
  }
  return -1;
}

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
