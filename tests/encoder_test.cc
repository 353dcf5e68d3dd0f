// The encoder end to end against PyTorch goldens (tools/gen_golden.py), and
// the batching contract: a sequence's outputs do not depend on its batch.
#include "model/encoder/encoder.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::attnserve::testing::GoldenSequence;
using ::attnserve::testing::kAttentionTolerance;
using ::attnserve::testing::kHiddenTolerance;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::ReadGolden;

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
  auto encoder = Encoder::Load(DataPath(GetParam()));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const int layers = (*encoder)->info().config.num_layers;
  const auto golden = ReadGolden(DataPath(GetParam()) + "/golden.json");
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
    EXPECT_LE(dh, kHiddenTolerance);
    EXPECT_LE(da, kAttentionTolerance);
    worst_hidden = std::max(worst_hidden, dh);
    worst_attention = std::max(worst_attention, da);
  }
  EXPECT_LE(MaxAbsDiff((*out)[0].embedding, golden[0].pooler),
            kHiddenTolerance);
  EXPECT_LE(MaxAbsDiff((*out)[1].embedding, golden[1].mean_pooled),
            kHiddenTolerance);
  RecordProperty("max_hidden_diff", std::to_string(worst_hidden));
  RecordProperty("max_attention_diff", std::to_string(worst_attention));
  std::printf(
      "[ %s ] max |hidden - torch| = %.3g, max |attention - torch| = %.3g\n",
      GetParam(), worst_hidden, worst_attention);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, GoldenTest,
                         ::testing::Values("tiny_bert", "tiny_bert_f16",
                                           "tiny_bert_bf16_prefixed"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);  // tests/data/<dir>
                         });

// Every sequence alone, then in batches of mixed lengths and orders: outputs
// agree to 1e-5 (padding never leaks; packing does not change numbers much).
TEST(EncoderTest, BatchingDoesNotChangeResults) {
  auto encoder = Encoder::Load(DataPath("tiny_bert"));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const auto golden = ReadGolden(DataPath("tiny_bert/golden.json"));
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
      EXPECT_LE(MaxAbsDiff((*out)[k].attention, alone[pick[k]].attention),
                1e-5);
    }
  }
}

TEST(EncoderTest, OnlyRequestedOutputsAreFilled) {
  auto encoder = Encoder::Load(DataPath("tiny_bert"));
  ASSERT_TRUE(encoder.ok());
  const auto golden = ReadGolden(DataPath("tiny_bert/golden.json"));
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
  EXPECT_LE(MaxAbsDiff((*out)[0].attention, layer1), kAttentionTolerance);
}

TEST(EncoderTest, BadTasksAreRefusedNotCrashed) {
  auto encoder = Encoder::Load(DataPath("tiny_bert"));
  ASSERT_TRUE(encoder.ok());
  auto refuse = [&](SequenceTask task, const std::string& needle) {
    auto out = (*encoder)->Forward({&task, 1});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status().message()),
                ::testing::HasSubstr(needle));
  };
  SequenceTask t;
  refuse(t, "sequences[0] has no tokens");
  t.token_ids = {2, 99, 3};
  refuse(t, "sequences[0].token_ids[1] = 99 is out of range [0, 99)");
  t.token_ids = {2, -1, 3};
  refuse(t, "sequences[0].token_ids[1] = -1 is out of range [0, 99)");
  t.token_ids = std::vector<int32_t>(41, 5);
  refuse(t,
         "has 41 tokens, more than the model's max_position_embeddings = 40");
  t.token_ids = {2, 5, 3};
  t.token_type_ids = {0, 2, 0};
  refuse(t, "sequences[0].token_type_ids[1] = 2 is out of range [0, 2)");
  t.token_type_ids = {0, 0};
  refuse(t, "token_type_ids has 2 entries but token_ids has 3");
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

namespace attnserve {
namespace {

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// bf16 and int8 against the fp32 reference on the demo model (hidden 128,
// 4 layers, 8 heads): the accuracy bounds the precisions promise.
TEST(EncoderPrecisionTest, ReducedPrecisionStaysCloseToFp32) {
  const std::string dir = ::testing::TempDir() + "/precision_model";
  ASSERT_TRUE(WriteDemoModel(dir).ok());
  std::mt19937 rng(11);
  std::vector<SequenceTask> tasks;
  for (int len : {5, 17, 64, 128}) {
    SequenceTask task;
    task.token_ids.push_back(2);
    for (int i = 1; i < len - 1; ++i) task.token_ids.push_back(5 + rng() % 150);
    task.token_ids.push_back(3);
    task.want_hidden = true;
    task.attention_layers = {0, 3};
    tasks.push_back(task);
  }
  auto run = [&](Precision p) {
    EncoderOptions options;
    options.precision = p;
    auto encoder = Encoder::Load(dir, options);
    EXPECT_TRUE(encoder.ok()) << encoder.status();
    auto out = (*encoder)->Forward(tasks);
    EXPECT_TRUE(out.ok()) << out.status();
    return *out;
  };
  const auto fp32 = run(Precision::kFloat32);
  struct Bound {
    Precision precision;
    double min_cosine;
    double max_attention_diff;
  };
  for (const Bound& bound : {Bound{Precision::kBFloat16, 0.999, 0.05},
                             Bound{Precision::kInt8, 0.99, 0.15}}) {
    const auto out = run(bound.precision);
    double worst_cos = 1, worst_attention = 0;
    for (size_t i = 0; i < tasks.size(); ++i) {
      worst_cos = std::min(worst_cos, Cosine(out[i].hidden, fp32[i].hidden));
      worst_attention = std::max(
          worst_attention, MaxAbsDiff(out[i].attention, fp32[i].attention));
    }
    std::printf("[ %s ] min cosine to fp32 = %.6f, max attention diff = %.4f\n",
                PrecisionName(bound.precision), worst_cos, worst_attention);
    EXPECT_GE(worst_cos, bound.min_cosine) << PrecisionName(bound.precision);
    EXPECT_LE(worst_attention, bound.max_attention_diff);
  }
}

}  // namespace
}  // namespace attnserve
