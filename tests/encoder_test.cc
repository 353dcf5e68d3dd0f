// The encoder end to end against PyTorch goldens (tools/gen_golden.py), and
// the batching contract: a sequence's outputs do not depend on its batch.
#include "model/encoder.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::GoldenSequence;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::ReadGolden;

// Tolerances promised by the core issue: hidden ≤ 1e-4, attention ≤ 1e-5.
constexpr double kHiddenTol = 1e-4;
constexpr double kAttentionTol = 1e-5;

std::string Data(const std::string& sub) {
  return std::string(ATTNSERVE_TEST_DATA) + "/" + sub;
}

SequenceTask TaskFor(const GoldenSequence& g, int layers) {
  SequenceTask task;
  task.token_ids = g.token_ids;
  task.token_type_ids = g.token_type_ids;
  task.want_hidden = true;
  for (int l = 0; l < layers; ++l) task.attention_layers.push_back(l);
  return task;
}

class GoldenTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenTest, WholeBatchMatchesPyTorch) {
  auto encoder = Encoder::Load(Data(GetParam()));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const int layers = (*encoder)->info().config.num_layers;
  const auto golden = ReadGolden(Data(GetParam()) + "/golden.json");
  ASSERT_FALSE(golden.empty());
  std::vector<SequenceTask> tasks;
  for (const auto& g : golden) tasks.push_back(TaskFor(g, layers));
  tasks[0].pooling = PoolingMode::kPooler;
  tasks[1].pooling = PoolingMode::kMean;
  auto out = (*encoder)->Forward(tasks);
  ASSERT_TRUE(out.ok()) << out.status();
  double worst_hidden = 0, worst_attention = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    SCOPED_TRACE(golden[i].name);
    const double dh = MaxAbsDiff((*out)[i].hidden, golden[i].hidden);
    const double da = MaxAbsDiff((*out)[i].attention, golden[i].attention);
    EXPECT_LE(dh, kHiddenTol);
    EXPECT_LE(da, kAttentionTol);
    worst_hidden = std::max(worst_hidden, dh);
    worst_attention = std::max(worst_attention, da);
  }
  EXPECT_LE(MaxAbsDiff((*out)[0].embedding, golden[0].pooler), kHiddenTol);
  EXPECT_LE(MaxAbsDiff((*out)[1].embedding, golden[1].mean_pooled), kHiddenTol);
  RecordProperty("max_hidden_diff", std::to_string(worst_hidden));
  RecordProperty("max_attention_diff", std::to_string(worst_attention));
  std::printf("[ %s ] max |hidden - torch| = %.3g, max |attention - torch| = %.3g\n",
              GetParam(), worst_hidden, worst_attention);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, GoldenTest,
                         ::testing::Values("tiny_bert", "tiny_bert_f16",
                                           "tiny_bert_bf16_prefixed"));

// Every sequence alone, then in batches of mixed lengths and orders: outputs
// agree to 1e-5 (padding never leaks; packing does not change numbers much).
TEST(EncoderTest, BatchingDoesNotChangeResults) {
  auto encoder = Encoder::Load(Data("tiny_bert"));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const auto golden = ReadGolden(Data("tiny_bert/golden.json"));
  std::vector<SequenceOutput> alone;
  for (const auto& g : golden) {
    SequenceTask task = TaskFor(g, 2);
    auto out = (*encoder)->Forward({&task, 1});
    ASSERT_TRUE(out.ok()) << out.status();
    alone.push_back((*out)[0]);
  }
  std::mt19937 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<size_t> pick;
    std::vector<SequenceTask> tasks;
    const int n = 1 + rng() % 12;
    for (int k = 0; k < n; ++k) {
      pick.push_back(rng() % golden.size());
      tasks.push_back(TaskFor(golden[pick.back()], 2));
    }
    auto out = (*encoder)->Forward(tasks);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t k = 0; k < tasks.size(); ++k) {
      EXPECT_LE(MaxAbsDiff((*out)[k].hidden, alone[pick[k]].hidden), 1e-5);
      EXPECT_LE(MaxAbsDiff((*out)[k].attention, alone[pick[k]].attention), 1e-5);
    }
  }
}

TEST(EncoderTest, OnlyRequestedOutputsAreFilled) {
  auto encoder = Encoder::Load(Data("tiny_bert"));
  ASSERT_TRUE(encoder.ok());
  const auto golden = ReadGolden(Data("tiny_bert/golden.json"));
  SequenceTask task;
  task.token_ids = golden[2].token_ids;
  task.attention_layers = {1};
  auto out = (*encoder)->Forward({&task, 1});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*out)[0].hidden.empty());
  EXPECT_TRUE((*out)[0].embedding.empty());
  const int64_t t = task.token_ids.size(), block = 4 * t * t;
  ASSERT_EQ((*out)[0].attention.size(), size_t(block));
  std::vector<float> layer1(golden[2].attention.begin() + block,
                            golden[2].attention.end());
  EXPECT_LE(MaxAbsDiff((*out)[0].attention, layer1), kAttentionTol);
}

TEST(EncoderTest, BadTasksAreRefusedNotCrashed) {
  auto encoder = Encoder::Load(Data("tiny_bert"));
  ASSERT_TRUE(encoder.ok());
  auto refuse = [&](SequenceTask task, const std::string& needle) {
    auto out = (*encoder)->Forward({&task, 1});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr(needle));
  };
  SequenceTask t;
  refuse(t, "no tokens");
  t.token_ids = {2, 99, 3};
  refuse(t, "outside [0, 99)");
  t.token_ids = {2, -1, 3};
  refuse(t, "outside [0, 99)");
  t.token_ids = std::vector<int32_t>(41, 5);
  refuse(t, "exceeds max_position_embeddings 40");
  t.token_ids = {2, 5, 3};
  t.token_type_ids = {0, 2, 0};
  refuse(t, "token type id 2");
  t.token_type_ids = {0, 0};
  refuse(t, "2 token_type_ids for 3 tokens");
  t.token_type_ids = {};
  t.attention_layers = {1, 0};
  refuse(t, "ascending");
  t.attention_layers = {2};
  refuse(t, "in [0, 2)");
  t.attention_layers = {};
  t.head_mask = {1};
  refuse(t, "head_mask has 1 entries, expected 8");
}

}  // namespace
}  // namespace attnserve
