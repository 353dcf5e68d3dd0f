// Pool (CLS, mean, BERT's pooler) and L2Normalize against the twins in
// tests/naive.h on random shapes (one token, hidden 1, BERT-base, the largest
// T), large and tiny values; ReadDefaultPooling on sentence-transformers
// directories written to a temporary directory.
#include "model/encoder/pooling.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/naive.h"

namespace attnserve {
namespace {

using ::testing::HasSubstr;

const char* ModeName(PoolingMode mode) {
  switch (mode) {
    case PoolingMode::kNone:
      return "none";
    case PoolingMode::kCls:
      return "cls";
    case PoolingMode::kMean:
      return "mean";
    case PoolingMode::kPooler:
      return "pooler";
  }
  return "unknown";
}

std::vector<float> Normal(size_t n, float scale, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = scale * normal(*rng);
  return v;
}

// ---------------------------------------------------------------- Pool

struct PoolCase {
  PoolingMode mode;
  int64_t t, h;
  float scale;  // hidden = scale · N(0, 1)
};

// "cls_t9_h16_scale1e-30" spelled for gtest: "cls_t9_h16_scale1em30".
std::string PoolCaseName(const PoolCase& c) {
  char scale[32];
  std::snprintf(scale, sizeof(scale), "%g", c.scale);
  std::string name = std::string(ModeName(c.mode)) + "_t" +
                     std::to_string(c.t) + "_h" + std::to_string(c.h) +
                     "_scale" + scale;
  for (char& ch : name) {
    if (ch == '-') ch = 'm';
    if (ch == '.' || ch == '+') ch = 'p';
  }
  return name;
}

void PrintTo(const PoolCase& c, std::ostream* os) { *os << PoolCaseName(c); }

std::vector<PoolCase> AllPoolCases() {
  std::vector<PoolCase> cases;
  for (PoolingMode mode :
       {PoolingMode::kCls, PoolingMode::kMean, PoolingMode::kPooler}) {
    for (const auto& [t, h] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 1}, {1, 32}, {7, 1}, {5, 33}, {128, 768}, {512, 64}}) {
      cases.push_back({mode, t, h, 1.f});
    }
    cases.push_back({mode, 9, 16, 1e4f});    // large: the pooler saturates
    cases.push_back({mode, 9, 16, 1e-30f});  // tiny: no flush to zero
  }
  return cases;
}

class PoolTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolTest, MatchesNaiveTwin) {
  const PoolCase c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.t * 1009 + c.h));
  const std::vector<float> hidden = Normal(c.t * c.h, c.scale, &rng);  // (t, h)
  // (h, h), (h): BERT-like initialization, so tanh is not saturated at scale 1.
  const std::vector<float> w = Normal(c.h * c.h, 1.f / std::sqrt(c.h), &rng);
  const std::vector<float> b = Normal(c.h, 0.1f, &rng);
  const std::vector<float> got = Pool(c.mode, hidden.data(), c.t, c.h, w, b);
  const std::vector<float> want =
      naive::Pool(c.mode, hidden.data(), c.t, c.h, w, b);
  ASSERT_EQ(want.size(), static_cast<size_t>(c.h));
  // Both sides accumulate in double and round once to float, so they agree
  // to the last bit here (measured error 0); allow one float ulp of the
  // largest output (|mean| ≤ max |hidden|, |tanh| ≤ 1) for a reordered sum.
  double biggest = 0;
  for (float v : want) biggest = std::max(biggest, std::fabs(double{v}));
  const double tol = biggest * std::numeric_limits<float>::epsilon();
  EXPECT_TRUE(naive::AllNear(got, want, tol));
  if (c.mode == PoolingMode::kCls) {
    // CLS is a copy of row 0: exact.
    EXPECT_TRUE(naive::AllNear(
        got, std::vector<float>(hidden.begin(), hidden.begin() + c.h), 0.0));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolTest, ::testing::ValuesIn(AllPoolCases()),
                         [](const ::testing::TestParamInfo<PoolCase>& info) {
                           return PoolCaseName(info.param);
                         });

TEST(PoolTest, NoneIsEmpty) {
  const std::vector<float> hidden(3 * 4, 1.f);
  EXPECT_TRUE(Pool(PoolingMode::kNone, hidden.data(), 3, 4, {}, {}).empty());
}

// Mean pooling over rows that differ only in one column, by hand.
TEST(PoolTest, MeanByHand) {
  const std::vector<float> hidden = {1.f, 10.f,   // (3, 2)
                                     2.f, 10.f,   //
                                     6.f, 10.f};  //
  EXPECT_EQ(Pool(PoolingMode::kMean, hidden.data(), 3, 2, {}, {}),
            (std::vector<float>{3.f, 10.f}));
}

// ---------------------------------------------------------------- L2Normalize

struct NormalizeCase {
  size_t n;
  float scale;  // v = scale · N(0, 1)
};

class L2NormalizeTest : public ::testing::TestWithParam<NormalizeCase> {};

TEST_P(L2NormalizeTest, MatchesNaiveTwinWithUnitNorm) {
  const NormalizeCase c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.n));
  std::vector<float> v = Normal(c.n, c.scale, &rng);
  const std::vector<float> want = naive::L2Normalize(v);
  L2Normalize(&v);
  // Outputs are ≤ 1 in magnitude. The production norm is a double sum, the
  // twin's a long double one, each rounded once to float: measured error 0
  // on every case; 1e-6 (8 float ulps at 1) leaves room for another order.
  EXPECT_TRUE(naive::AllNear(v, want, 1e-6));
  double norm = 0;
  for (float x : v) norm += double{x} * x;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-6);  // fails on NaN too
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, L2NormalizeTest,
    ::testing::Values(NormalizeCase{1, 1.f}, NormalizeCase{3, 1.f},
                      NormalizeCase{768, 1.f},
                      // Squares of 1e20 overflow float (1e40) and of 1e-30
                      // underflow it (1e-60); 1e-40 is subnormal.
                      NormalizeCase{768, 1e20f}, NormalizeCase{768, 1e-30f},
                      NormalizeCase{64, 1e-40f}),
    [](const ::testing::TestParamInfo<NormalizeCase>& info) {
      char scale[32];
      std::snprintf(scale, sizeof(scale), "%g", info.param.scale);
      std::string name =
          "n" + std::to_string(info.param.n) + "_scale" + scale;  // 1e+20
      for (char& ch : name) {
        if (ch == '-') ch = 'm';
        if (ch == '.' || ch == '+') ch = 'p';
      }
      return name;
    });

TEST(L2NormalizeTest, ZeroAndEmptyStayAsTheyAre) {
  std::vector<float> zero(5, 0.f);
  L2Normalize(&zero);
  EXPECT_EQ(zero, std::vector<float>(5, 0.f));
  std::vector<float> empty;
  L2Normalize(&empty);
  EXPECT_TRUE(empty.empty());
}

TEST(L2NormalizeTest, ByHand) {
  std::vector<float> v = {3.f, -4.f};
  L2Normalize(&v);
  EXPECT_EQ(v, (std::vector<float>{0.6f, -0.8f}));
  std::vector<float> one = {-7.f};
  L2Normalize(&one);
  EXPECT_EQ(one, std::vector<float>{-1.f});
}

// ---------------------------------------------------------------- defaults

// A fresh directory under the test's temporary directory.
std::string MakeTempDir() {
  std::string dir = ::testing::TempDir() + "pooling_test.XXXXXX";
  EXPECT_NE(::mkdtemp(dir.data()), nullptr) << dir;
  return dir;
}

// Writes `text` to dir/relative, creating subdirectories.
void Write(const std::string& dir, const std::string& relative,
           const std::string& text) {
  const std::filesystem::path path = std::filesystem::path(dir) / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// modules.json as sentence-transformers writes it: a Transformer, a Pooling
// module in `pooling_path`, and a Normalize.
std::string ModulesJson(const std::string& pooling_path) {
  return R"([
  {"idx": 0, "name": "0", "path": "",
   "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": ")" +
         pooling_path + R"(",
   "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Normalize",
   "type": "sentence_transformers.models.Normalize"}
])";
}

// 1_Pooling/config.json with one pooling_mode_* flag set.
std::string PoolingConfig(const std::string& mode) {
  std::string json = "{\"word_embedding_dimension\": 384";
  for (const char* key :
       {"pooling_mode_cls_token", "pooling_mode_mean_tokens",
        "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"}) {
    json +=
        std::string(", \"") + key + "\": " + (key == mode ? "true" : "false");
  }
  return json + "}";
}

TEST(ReadDefaultPoolingTest, NoModulesJsonIsCls) {
  const std::string dir = MakeTempDir();
  auto mode = ReadDefaultPooling(dir);
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, PoolingMode::kCls);
  // Not even the directory: still nothing to read, still CLS.
  auto absent = ReadDefaultPooling(dir + "/absent");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_EQ(*absent, PoolingMode::kCls);
}

TEST(ReadDefaultPoolingTest, MeanTokensIsMean) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", ModulesJson("1_Pooling"));
  Write(dir, "1_Pooling/config.json",
        PoolingConfig("pooling_mode_mean_tokens"));
  auto mode = ReadDefaultPooling(dir);
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, PoolingMode::kMean);
}

TEST(ReadDefaultPoolingTest, ClsTokenIsCls) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", ModulesJson("1_Pooling"));
  Write(dir, "1_Pooling/config.json", PoolingConfig("pooling_mode_cls_token"));
  auto mode = ReadDefaultPooling(dir);
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, PoolingMode::kCls);
}

// The Pooling module's config is read from its "path", "1_Pooling" when the
// entry has none.
TEST(ReadDefaultPoolingTest, ConfigIsReadFromTheModulePath) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", ModulesJson("pool"));
  Write(dir, "pool/config.json", PoolingConfig("pooling_mode_mean_tokens"));
  Write(dir, "1_Pooling/config.json", PoolingConfig("pooling_mode_cls_token"));
  auto mode = ReadDefaultPooling(dir);
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_EQ(*mode, PoolingMode::kMean);

  const std::string no_path = MakeTempDir();
  Write(no_path, "modules.json",
        R"([{"type": "sentence_transformers.models.Pooling"}])");
  Write(no_path, "1_Pooling/config.json",
        PoolingConfig("pooling_mode_mean_tokens"));
  auto fallback = ReadDefaultPooling(no_path);
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(*fallback, PoolingMode::kMean);
}

// modules.json that names no Pooling module, or is not a list: CLS.
TEST(ReadDefaultPoolingTest, NoPoolingModuleIsCls) {
  for (const char* modules :
       {R"([{"type": "sentence_transformers.models.Transformer"}])", "[]",
        R"({"type": "sentence_transformers.models.Pooling"})"}) {
    SCOPED_TRACE(modules);
    const std::string dir = MakeTempDir();
    Write(dir, "modules.json", modules);
    Write(dir, "1_Pooling/config.json",
          PoolingConfig("pooling_mode_mean_tokens"));
    auto mode = ReadDefaultPooling(dir);
    ASSERT_TRUE(mode.ok()) << mode.status();
    EXPECT_EQ(*mode, PoolingMode::kCls);
  }
}

TEST(ReadDefaultPoolingTest, MalformedModulesJsonNamesTheFile) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", "[{\"type\": ");
  auto mode = ReadDefaultPooling(dir);
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mode.status().message(), HasSubstr(dir + "/modules.json"));
  EXPECT_THAT(mode.status().message(), HasSubstr("malformed JSON"));
}

TEST(ReadDefaultPoolingTest, MalformedPoolingConfigNamesTheFile) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", ModulesJson("1_Pooling"));
  Write(dir, "1_Pooling/config.json", "{\"pooling_mode_mean_tokens\": tru");
  auto mode = ReadDefaultPooling(dir);
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mode.status().message(),
              HasSubstr(dir + "/1_Pooling/config.json"));
  EXPECT_THAT(mode.status().message(), HasSubstr("malformed JSON"));
}

TEST(ReadDefaultPoolingTest, MissingPoolingConfigNamesTheFile) {
  const std::string dir = MakeTempDir();
  Write(dir, "modules.json", ModulesJson("1_Pooling"));
  auto mode = ReadDefaultPooling(dir);
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mode.status().message(),
              HasSubstr(dir + "/1_Pooling/config.json"));
}

// Max and mean-sqrt-len pooling are not implemented: refused, not CLS.
TEST(ReadDefaultPoolingTest, OtherModesAreUnimplemented) {
  for (const char* flag :
       {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"}) {
    SCOPED_TRACE(flag);
    const std::string dir = MakeTempDir();
    Write(dir, "modules.json", ModulesJson("1_Pooling"));
    Write(dir, "1_Pooling/config.json", PoolingConfig(flag));
    auto mode = ReadDefaultPooling(dir);
    ASSERT_FALSE(mode.ok());
    EXPECT_EQ(mode.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(mode.status().message(),
                HasSubstr(dir + "/1_Pooling/config.json"));
  }
}

}  // namespace
}  // namespace attnserve
