// Reads the PyTorch goldens written by tools/gen_golden.py (layout in its
// docstring). Header-only so every test binary can use it.
#ifndef ATTNSERVE_TESTS_GOLDEN_H_
#define ATTNSERVE_TESTS_GOLDEN_H_

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

inline std::vector<GoldenSequence> ReadGolden(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str());
  std::vector<GoldenSequence> out;
  for (const auto& s : j.at("sequences")) {
    GoldenSequence g;
    g.name = s.at("name").get<std::string>();
    g.token_ids = s.at("token_ids").get<std::vector<int32_t>>();
    g.token_type_ids = s.at("token_type_ids").get<std::vector<int32_t>>();
    g.hidden = s.at("last_hidden_state").at("data").get<std::vector<float>>();
    g.attention = s.at("attentions").at("data").get<std::vector<float>>();
    g.pooler = s.at("pooler_output").at("data").get<std::vector<float>>();
    g.mean_pooled = s.at("mean_pooled").at("data").get<std::vector<float>>();
    out.push_back(std::move(g));
  }
  return out;
}

inline double MaxAbsDiff(const std::vector<float>& a,
                         const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(double{a[i]} - b[i]));
  }
  return worst;
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_GOLDEN_H_
