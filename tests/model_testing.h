// Test checkpoints written to temporary directories: a model built so that
// exactly one head matters (tests/head_ranking_test.cc checks RankHeads on it,
// tests/server_heads_test.cc the RankHeads RPC). Header-only.
#ifndef ATTNSERVE_TESTS_MODEL_TESTING_H_
#define ATTNSERVE_TESTS_MODEL_TESTING_H_

#include <stdlib.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/checkpoint/weights.h"

namespace attnserve::testing {

// A fresh directory under the test's temporary directory.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string dir = ::testing::TempDir() + prefix + ".XXXXXX";
  EXPECT_NE(::mkdtemp(dir.data()), nullptr);
  return dir;
}

// The head that matters in WriteOneHeadModel's checkpoint.
inline constexpr int kOneLayer = 1, kOneHead = 2;

// 2 layers × 4 heads, hidden 32. Every head's columns of the attention output
// projection are zero except head kOneHead of layer kOneLayer, whose columns
// are large: masking any other head (or layer 0) changes nothing downstream.
// Returns the checkpoint's directory.
inline std::string WriteOneHeadModel() {
  ModelConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 32;
  const int64_t h = c.hidden_size, d = c.head_size();
  std::mt19937 rng(7);
  std::normal_distribution<float> weight(0.f, 0.2f), large(0.f, 1.f);
  std::map<std::string, HostTensor> tensors;
  for (const NamedShape& ns : WeightTable(c, /*with_pooler=*/true)) {
    HostTensor t{ns.shape, {}};
    int64_t n = 1;
    for (int64_t dim : ns.shape) n *= dim;
    const bool gamma = ns.name.find("LayerNorm.weight") != std::string::npos;
    t.values.resize(n);
    for (float& v : t.values) v = gamma ? 1.f : weight(rng);
    tensors.emplace(ns.name, std::move(t));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    // (H, H) rows = output features, columns = concatenated heads' features.
    std::vector<float>& w = tensors
                                .at("encoder.layer." + std::to_string(l) +
                                    ".attention.output.dense.weight")
                                .values;
    for (int64_t row = 0; row < h; ++row) {
      for (int64_t col = 0; col < h; ++col) {
        const bool kept = l == kOneLayer && col / d == kOneHead;
        w[row * h + col] = kept ? large(rng) : 0.f;
      }
    }
  }
  const std::string dir = MakeTempDir("one_head_model");
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  std::ofstream(dir + "/config.json") << ConfigJson(c);
  return dir;
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_MODEL_TESTING_H_
