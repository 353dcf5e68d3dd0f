// Reads the PyTorch goldens written by tools/gen_golden.py (layout in its
// docstring). Header-only so every test binary can use it.
#ifndef ATTNSERVE_TESTS_GOLDEN_H_
#define ATTNSERVE_TESTS_GOLDEN_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace attnserve::testing {

struct GoldenSequence {
  std::string name;
  std::vector<int32_t> token_ids;       // (T)
  std::vector<int32_t> token_type_ids;  // (T)
  std::vector<float> hidden;            // (T, H)
  std::vector<float> attention;         // (L, heads, T, T)
  std::vector<float> pooler;            // (H)
  std::vector<float> mean_pooled;       // (H)
  int64_t length() const { return token_ids.size(); }
};

// The fp32 tolerances against the float64 PyTorch goldens, about 10× what is
// measured (AMD EPYC, oneDNN 2.6.3): hidden states 1.6e-6 at most (tiny_bert,
// its f16/bf16 copies and the head-mask goldens), attention 3.9e-7. A wrong
// LayerNorm epsilon or a bf16 rounding anywhere in the fp32 path is far
// beyond them.
inline constexpr double kHiddenTolerance = 2e-5;
inline constexpr double kAttentionTolerance = 4e-6;

// tests/data/<sub>.
inline std::string DataPath(const std::string& sub) {
  return std::string(ATTNSERVE_TEST_DATA) + "/" + sub;
}

// The whole file, byte for byte.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One entry of a golden file's "sequences".
inline GoldenSequence ParseGoldenSequence(const nlohmann::json& s) {
  GoldenSequence g;
  g.name = s.at("name").get<std::string>();
  g.token_ids = s.at("token_ids").get<std::vector<int32_t>>();
  g.token_type_ids = s.at("token_type_ids").get<std::vector<int32_t>>();
  g.hidden = s.at("last_hidden_state").at("data").get<std::vector<float>>();
  g.attention = s.at("attentions").at("data").get<std::vector<float>>();
  g.pooler = s.at("pooler_output").at("data").get<std::vector<float>>();
  g.mean_pooled = s.at("mean_pooled").at("data").get<std::vector<float>>();
  return g;
}

// golden.json.
inline std::vector<GoldenSequence> ReadGolden(const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(ReadFile(path));
  std::vector<GoldenSequence> out;
  for (const auto& s : j.at("sequences")) {
    out.push_back(ParseGoldenSequence(s));
  }
  return out;
}

// One case of golden_head_mask.json: the sequences run with `head_mask`.
struct HeadMaskCase {
  std::string name;
  std::vector<uint8_t> head_mask;  // (L, heads), 1 = switched off
  std::vector<GoldenSequence> sequences;
};

// golden_head_mask.json (Hugging Face's head_mask semantics).
inline std::vector<HeadMaskCase> ReadHeadMaskGolden(const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(ReadFile(path));
  std::vector<HeadMaskCase> out;
  for (const auto& c : j.at("cases")) {
    HeadMaskCase m;
    m.name = c.at("name").get<std::string>();
    m.head_mask = c.at("head_mask").at("data").get<std::vector<uint8_t>>();
    for (const auto& s : c.at("sequences")) {
      m.sequences.push_back(ParseGoldenSequence(s));
    }
    out.push_back(std::move(m));
  }
  return out;
}

inline const GoldenSequence& FindGolden(const std::vector<GoldenSequence>& all,
                                        const std::string& name) {
  for (const GoldenSequence& g : all) {
    if (g.name == name) return g;
  }
  ADD_FAILURE() << "no golden sequence " << name;
  return all.front();
}

// max |a[i] − b[i]|; +∞ when the sizes differ or both are empty (nothing
// compared is not a match), NaN as soon as a difference is NaN (a NaN, or the
// same infinity on both sides), so EXPECT_LE(MaxAbsDiff(...), tol) fails on
// NaN output (a plain std::max(worst, NaN) keeps `worst` and would pass).
inline double MaxAbsDiff(const std::vector<float>& a,
                         const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double{a[i]} - b[i]);
    if (std::isnan(d)) return d;
    worst = std::max(worst, d);
  }
  return worst;
}

// The smallest cosine similarity between matching rows of `got` and `want`,
// both (rows, width) row-major: per token, so one garbage token among many
// good ones still scores low (a cosine over the whole block would hide it).
// NaN, which fails EXPECT_GE, when there is nothing to compare, the sizes
// differ or are not whole rows, a value is NaN or infinite, or a row is all
// zeros on either side (its cosine is undefined).
inline double MinTokenCosine(const std::vector<float>& got,
                             const std::vector<float>& want, int64_t width) {
  if (width <= 0 || got.empty() || got.size() != want.size() ||
      got.size() % width != 0) {
    return NAN;
  }
  double worst = 1;
  for (size_t row = 0; row < got.size() / width; ++row) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < width; ++c) {
      const double a = got[row * width + c], b = want[row * width + c];
      if (!std::isfinite(a) || !std::isfinite(b)) return NAN;
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    if (aa == 0 || bb == 0) return NAN;
    worst = std::min(worst, ab / std::sqrt(aa * bb));
  }
  return worst;
}

// Bit-for-bit equality, for results that must not depend on batching. Fails
// on a size mismatch, on empty input (nothing was compared), and on NaN or
// infinity on either side (identical garbage is still garbage); the message
// names the first difference.
inline ::testing::AssertionResult SameBits(const std::vector<float>& got,
                                           const std::vector<float>& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: " << got.size() << " vs " << want.size();
  }
  if (got.empty()) {
    return ::testing::AssertionFailure() << "nothing to compare (both empty)";
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) {
      return ::testing::AssertionFailure()
             << "non-finite value at [" << i << "]: " << got[i] << " vs "
             << want[i];
    }
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "first difference at [" << i << "]: " << got[i] << " vs "
             << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_GOLDEN_H_
