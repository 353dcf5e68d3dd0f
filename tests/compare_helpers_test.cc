// The comparison helpers themselves must be able to fail: each is given NaN,
// infinity, empty input and a size mismatch, and must refuse all four (a
// helper that lets NaN through passes a model that outputs garbage). Also:
// one bad token among good ones must show in MinTokenCosine.
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/golden.h"
#include "tests/naive.h"

namespace attnserve {
namespace {

using ::attnserve::naive::AllNear;
using ::attnserve::naive::MaxAbsError;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::MinTokenCosine;
using ::attnserve::testing::SameBits;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<float> kGood = {0.5f, -1.f, 2.f, 0.25f};

// The four inputs every helper must refuse, as (got, want) pairs.
struct Bad {
  const char* what;
  std::vector<float> got, want;
};
std::vector<Bad> BadInputs() {
  return {
      {"NaN in got", {0.5f, kNaN, 2.f, 0.25f}, kGood},
      {"NaN in want", kGood, {0.5f, -1.f, kNaN, 0.25f}},
      {"NaN on both sides", {kNaN, -1.f, 2.f, 0.25f}, {kNaN, -1.f, 2.f, 0.25f}},
      {"infinity in got", {0.5f, -1.f, kInf, 0.25f}, kGood},
      {"the same infinity on both sides",
       {0.5f, -kInf, 2.f, 0.25f},
       {0.5f, -kInf, 2.f, 0.25f}},
      {"empty", {}, {}},
      {"size mismatch", {0.5f, -1.f}, kGood},
  };
}

TEST(CompareHelpersTest, MaxAbsDiffFailsEveryBadInput) {
  EXPECT_LE(MaxAbsDiff(kGood, kGood), 0.0);
  for (const Bad& b : BadInputs()) {
    EXPECT_FALSE(MaxAbsDiff(b.got, b.want) <= 1e3) << b.what;
  }
}

TEST(CompareHelpersTest, MaxAbsErrorReportsEveryBadInput) {
  EXPECT_EQ(MaxAbsError(kGood, kGood), 0.0);
  for (const Bad& b : BadInputs()) {
    EXPECT_FALSE(MaxAbsError(b.got, b.want) <= 1e3) << b.what;
  }
}

TEST(CompareHelpersTest, AllNearFailsEveryBadInput) {
  EXPECT_TRUE(AllNear(kGood, kGood, 0));
  for (const Bad& b : BadInputs()) {
    EXPECT_FALSE(AllNear(b.got, b.want, 1e3)) << b.what;
  }
}

TEST(CompareHelpersTest, SameBitsFailsEveryBadInputAndAnyDifference) {
  EXPECT_TRUE(SameBits(kGood, kGood));
  for (const Bad& b : BadInputs()) {
    EXPECT_FALSE(SameBits(b.got, b.want)) << b.what;
  }
  std::vector<float> off = kGood;
  off[3] = std::nextafter(off[3], 1.f);  // one ulp
  EXPECT_FALSE(SameBits(off, kGood));
  EXPECT_FALSE(SameBits({0.f}, {-0.f}));  // equal values, different bits
}

TEST(CompareHelpersTest, MinTokenCosineFailsEveryBadInput) {
  EXPECT_NEAR(MinTokenCosine(kGood, kGood, 2), 1.0, 1e-12);
  for (const Bad& b : BadInputs()) {
    EXPECT_FALSE(MinTokenCosine(b.got, b.want, 2) >= -1.0) << b.what;
  }
  // Not whole rows, a zero row (cosine undefined), a bad width.
  EXPECT_TRUE(std::isnan(MinTokenCosine(kGood, kGood, 3)));
  EXPECT_TRUE(std::isnan(MinTokenCosine({0.f, 0.f, 1.f, 2.f}, kGood, 2)));
  EXPECT_TRUE(std::isnan(MinTokenCosine(kGood, kGood, 0)));
}

TEST(CompareHelpersTest, MinTokenCosineSeesOneBadTokenAmongMany) {
  // 100 tokens of width 8, one of them reversed: a cosine over the whole
  // block would still be 0.98; per token it is -1.
  std::vector<float> want(100 * 8), got;
  for (size_t i = 0; i < want.size(); ++i) want[i] = 1.f + (i % 8);
  got = want;
  for (int c = 0; c < 8; ++c) got[42 * 8 + c] = -got[42 * 8 + c];
  EXPECT_NEAR(MinTokenCosine(got, want, 8), -1.0, 1e-9);
  EXPECT_NEAR(MinTokenCosine(want, want, 8), 1.0, 1e-9);
}

}  // namespace
}  // namespace attnserve
