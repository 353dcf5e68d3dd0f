// common/: the 16-bit float conversions and the UTF-8 decoder.
//
// HalfToFloat and BFloat16ToFloat are checked against an independent decoding
// of the bit fields with std::ldexp (no bit tricks shared with the code under
// test), over all 65536 inputs, bit for bit. FloatToHalf is checked against
// the compiler's _Float16 (round to nearest even in libgcc), or F16C where
// the compiler has none. The UTF-8 checks
// use hand-made byte strings from RFC 3629's table.
#include <immintrin.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "common/file.h"
#include "common/half.h"
#include "common/utf8.h"
#include "gtest/gtest.h"

namespace attnserve {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
double ReferenceHalf(uint16_t h) {
  const int sign = h >> 15;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);  // subnormal: mant · 2^(1-15-10)
  } else if (exp == 0x1f) {
    v = mant == 0 ? std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(1024 + mant, exp - 25);  // (1 + mant/2^10) · 2^(exp-15)
  }
  return sign ? -v : v;
}

// bfloat16: 1 sign, 8 exponent (bias 127), 7 mantissa bits.
double ReferenceBFloat16(uint16_t b) {
  const int sign = b >> 15;
  const int exp = (b >> 7) & 0xff;
  const int mant = b & 0x7f;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -133);  // subnormal: mant · 2^(1-127-7)
  } else if (exp == 0xff) {
    v = mant == 0 ? std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(128 + mant, exp - 134);  // (1 + mant/2^7) · 2^(exp-127)
  }
  return sign ? -v : v;
}

TEST(HalfToFloatTest, AllValuesMatchBitFieldDecoding) {
  int mismatches = 0;
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float got = HalfToFloat(h);
    const double want = ReferenceHalf(h);
    if (std::isnan(want)) {
      // NaN stays NaN and keeps its sign; the payload is not compared.
      if (!std::isnan(got) || std::signbit(got) != bool(h >> 15)) {
        ADD_FAILURE() << "half 0x" << std::hex << i << " should be NaN, got "
                      << got;
        ++mismatches;
      }
      continue;
    }
    // Every half is exactly a float: compare bits (so -0 ≠ +0).
    if (Bits(got) != Bits(static_cast<float>(want))) {
      ADD_FAILURE() << "half 0x" << std::hex << i << ": got " << got << " want "
                    << want;
      ++mismatches;
    }
    if (mismatches > 10) break;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HalfToFloatTest, LandmarkValues) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);               // largest finite
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff),
            std::ldexp(1023.0f, -24));                // largest subnormal
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));  // signaling NaN stays NaN
}

TEST(BFloat16ToFloatTest, AllValuesMatchBitFieldDecoding) {
  int mismatches = 0;
  for (uint32_t i = 0; i <= 0xffff && mismatches <= 10; ++i) {
    const uint16_t b = static_cast<uint16_t>(i);
    const float got = BFloat16ToFloat(b);
    const double want = ReferenceBFloat16(b);
    const bool ok = std::isnan(want)
                        ? std::isnan(got) && std::signbit(got) == bool(b >> 15)
                        : Bits(got) == Bits(static_cast<float>(want));
    if (!ok) {
      ADD_FAILURE() << "bf16 0x" << std::hex << i << ": got " << got << " want "
                    << want;
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(BFloat16ToFloatTest, Samples) {
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(BFloat16ToFloat(0x4049), 3.140625f);
  EXPECT_EQ(BFloat16ToFloat(0x0001), std::ldexp(1.0f, -133));
  EXPECT_EQ(BFloat16ToFloat(0x7f7f), std::ldexp(255.0f, 127 - 7));
  EXPECT_EQ(Bits(BFloat16ToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(BFloat16ToFloat(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(BFloat16ToFloat(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7fc0)));
}

#if defined(__FLT16_MAX__)
uint16_t Reference(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
#else
// clang before 15 has no _Float16 on x86 (the sanitizer builds use clang-14):
// the CPU's own conversion (F16C, round to nearest even) is the reference.
__attribute__((target("f16c"))) uint16_t Reference(float f) {
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

TEST(FloatToHalfTest, SpecialValues) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);   // largest half
  EXPECT_EQ(FloatToHalf(65519.99f), 0x7bff);  // rounds down
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);   // tie → even → inf
  EXPECT_EQ(FloatToHalf(1e30f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e30f), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(IsHalfNaN(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(FloatToHalf(0x1p-14f), 0x0400);         // smallest normal
  EXPECT_EQ(FloatToHalf(0x1p-24f), 0x0001);         // smallest subnormal
  EXPECT_EQ(FloatToHalf(0x1p-25f), 0x0000);         // tie → even → 0
  EXPECT_EQ(FloatToHalf(0x1.8p-24f), 0x0002);       // tie → even → 2·2^-24
  EXPECT_EQ(FloatToHalf(0x1.000002p-25f), 0x0001);  // just over the tie
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f), 0x3c00);  // tie → even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie → even (up)
}

TEST(FloatToHalfTest, MatchesCompilerConversionOnASweepOfFloats) {
  auto check = [](uint32_t u) {
    const float f = FromBits(u);
    const uint16_t got = FloatToHalf(f);
    if (std::isnan(f)) return IsHalfNaN(got);
    return got == Reference(f);
  };
  // Every 4099th bit pattern (prime stride: all exponents, varied low bits).
  int64_t checked = 0;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4099, ++checked) {
    ASSERT_TRUE(check(static_cast<uint32_t>(u))) << std::hex << u;
  }
  // Denser where the rounding is subtle: half subnormals (2^-26 .. 2^-14)
  // and, bit by bit, around the zero/subnormal, subnormal/normal and
  // normal/overflow boundaries, both signs.
  for (uint32_t u = 0x32800000u; u < 0x38800000u; u += 61, ++checked) {
    ASSERT_TRUE(check(u) && check(u | 0x80000000u)) << std::hex << u;
  }
  for (uint32_t center : {0x33000000u, 0x38800000u, 0x477fe000u}) {
    for (uint32_t u = center - 0x4000; u < center + 0x4000; ++u, ++checked) {
      ASSERT_TRUE(check(u) && check(u | 0x80000000u)) << std::hex << u;
    }
  }
  EXPECT_GT(checked, 2000000);
}

TEST(FloatToHalfTest, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (IsHalfNaN(h)) continue;
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Utf8Test, FirstInvalidUtf8) {
  EXPECT_EQ(FirstInvalidUtf8(""), -1);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), -1);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"), -1);
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x8f\xbf\xbf"), -1);  // U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"
                             "cd"),
            2);
  EXPECT_EQ(FirstInvalidUtf8("ab\x80"), 2);            // lone continuation
  EXPECT_EQ(FirstInvalidUtf8("x\xc0\xaf"), 1);         // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("x\xc1\xbf"), 1);         // overlong
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0);      // overlong 3-byte
  EXPECT_EQ(FirstInvalidUtf8("\xed\xa0\x80"), 0);      // surrogate U+D800
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x80\x80\xaf"), 0);  // overlong 4-byte
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0);  // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xf5\x80\x80\x80"), 0);
  EXPECT_EQ(FirstInvalidUtf8("ok \xe4\xb8"), 3);   // truncated at the end
  EXPECT_EQ(FirstInvalidUtf8("\xe4\x41\x80"), 0);  // bad second byte
}

TEST(Utf8Test, DecodesCodePointsAndLengths) {
  char32_t cp = 0;
  EXPECT_EQ(DecodeUtf8("A", 0, &cp), 1);
  EXPECT_EQ(cp, U'A');
  EXPECT_EQ(DecodeUtf8("x\xc3\xa9", 1, &cp), 2);
  EXPECT_EQ(cp, U'\u00e9');
  EXPECT_EQ(DecodeUtf8("\xe4\xb8\xad", 0, &cp), 3);
  EXPECT_EQ(cp, U'\u4e2d');
  EXPECT_EQ(DecodeUtf8("\xf0\x9f\x98\x80", 0, &cp), 4);
  EXPECT_EQ(cp, U'\U0001f600');
  EXPECT_EQ(DecodeUtf8("\xf4\x8f\xbf\xbf", 0, &cp), 4);
  EXPECT_EQ(cp, U'\U0010ffff');
  EXPECT_EQ(DecodeUtf8("\xe4\xb8", 0, &cp), 0);  // truncated
}

TEST(ReadFileTest, ReadsBytesAndNamesAMissingFile) {
  std::string dir = ::testing::TempDir() + "read_file_test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/read_file_test.bin";
  const std::string bytes("a\0b\xff", 4);
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  absl::StatusOr<std::string> got = ReadFile(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  absl::StatusOr<std::string> missing = ReadFile(path + ".missing");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find(path + ".missing: cannot open"),
            std::string::npos)
      << missing.status();
}

}  // namespace
}  // namespace attnserve
