// Reads the PyTorch goldens written by tools/gen_golden.py (layout in its
// docstring). Header-only so every test binary can use it.
#ifndef ATTNSERVE_TESTS_GOLDEN_H_
#define ATTNSERVE_TESTS_GOLDEN_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// The tolerances promised against the goldens: hidden ≤ 1e-4, attention
// ≤ 1e-5.
inline constexpr double kHiddenTolerance = 1e-4;
inline constexpr double kAttentionTolerance = 1e-5;

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

// max |a[i] − b[i]|; +∞ when the sizes differ, NaN as soon as a difference
// is NaN, so EXPECT_LE(MaxAbsDiff(...), tol) fails on NaN output (a plain
// std::max(worst, NaN) keeps `worst` and would pass).
inline double MaxAbsDiff(const std::vector<float>& a,
                         const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double{a[i]} - b[i]);
    if (std::isnan(d)) return d;
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_GOLDEN_H_
