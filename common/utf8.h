// UTF-8 validation and decoding (RFC 3629): no overlong forms, no surrogates,
// nothing above U+10FFFF — the same rules as Python's and protobuf's decoders,
// so an offset we report is the one a user's own tools report.
#ifndef ATTNSERVE_COMMON_UTF8_H_
#define ATTNSERVE_COMMON_UTF8_H_

#include <cstdint>
#include <string_view>

namespace attnserve {

// Decodes the code point that starts at bytes[pos] (pos < size). Returns its
// length in bytes (1–4), or 0 when the sequence there is invalid or truncated.
int DecodeUtf8(std::string_view bytes, size_t pos, char32_t* code_point);

// Byte offset of the first invalid sequence, or -1 when all of `bytes` is
// valid UTF-8.
int64_t FirstInvalidUtf8(std::string_view bytes);

}  // namespace attnserve

#endif  // ATTNSERVE_COMMON_UTF8_H_
