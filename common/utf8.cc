#include "common/utf8.h"

namespace attnserve {

int DecodeUtf8(std::string_view bytes, size_t pos, char32_t* code_point) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data()) + pos;
  const size_t left = bytes.size() - pos;
  const unsigned char c = s[0];
  if (c < 0x80) {
    *code_point = c;
    return 1;
  }
  // Length, payload bits of the lead byte, and the allowed range of the
  // second byte (RFC 3629 table).
  int len = 0;
  char32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;  // no overlong forms
    if (c == 0xed) hi = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xf0) lo = 0x90;  // no overlong forms
    if (c == 0xf4) hi = 0x8f;  // ≤ U+10FFFF
  } else {
    return 0;
  }
  if (static_cast<size_t>(len) > left) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (int k = 1; k < len; ++k) {
    if (s[k] < 0x80 || s[k] > 0xbf) return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  *code_point = cp;
  return len;
}

int64_t FirstInvalidUtf8(std::string_view bytes) {
  char32_t cp;
  for (size_t i = 0; i < bytes.size();) {
    const int n = DecodeUtf8(bytes, i, &cp);
    if (n == 0) return static_cast<int64_t>(i);
    i += n;
  }
  return -1;
}

}  // namespace attnserve
