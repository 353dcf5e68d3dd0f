// The encoder end to end against PyTorch goldens (tools/gen_golden.py), and
// the batching contract: a sequence's outputs do not depend on its batch.
#include "model/encoder/encoder.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/kernels/cpu.h"
#include "tests/golden.h"
#include "tests/model_testing.h"

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
  // Without a pooler (DistilBERT, ELECTRA) the first sequence is CLS-pooled.
  const bool pooler = (*encoder)->info().has_pooler;
  tasks[0].pooling = pooler ? PoolingMode::kPooler : PoolingMode::kCls;
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
  EXPECT_LE(
      MaxAbsDiff((*out)[0].embedding,
                 pooler ? golden[0].pooler
                        : std::vector<float>(golden[0].hidden.begin(),
                                             golden[0].hidden.begin() +
                                                 (*out)[0].embedding.size())),
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
                                           "tiny_bert_bf16_prefixed",
                                           "tiny_roberta", "tiny_distilbert",
                                           "tiny_electra"),
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

using ::attnserve::testing::MinTokenCosine;

// bf16 and int8 against fp32 on two models: the demo model (hidden 128,
// 4 layers, 8 heads; its random weights give peaked attention, where a small
// change of a score moves a probability most) and tiny_bert (hidden 32,
// near-uniform attention). Hidden states are compared token by token (the
// worst token's cosine, so one garbage token fails the test); attention by
// the mean and the largest probability difference over every layer.
struct PrecisionBound {
  Precision precision;
  const char* model;        // "demo" or a tests/data directory
  double min_token_cosine;  // of the hidden states, against fp32
  double max_mean_attention_diff;
  double max_attention_diff;
  // bf16 only: Q·Kᵀ and P·V in bf16 too (what AMX hosts run by default).
  // Set either way, so the test checks the same path on every host.
  bool bf16_attention = false;
};

std::string BoundName(const PrecisionBound& b) {
  return absl::StrCat(PrecisionName(b.precision),
                      b.bf16_attention ? "_bf16attention_" : "_", b.model);
}

void PrintTo(const PrecisionBound& b, std::ostream* os) { *os << BoundName(b); }

class EncoderPrecisionTest : public ::testing::TestWithParam<PrecisionBound> {};

TEST_P(EncoderPrecisionTest, ReducedPrecisionStaysCloseToFp32) {
  const PrecisionBound bound = GetParam();
  if (!CheckPrecisionSupported(bound.precision).ok()) {
    // bf16 on a CPU (or ONEDNN_MAX_CPU_ISA) below AVX-512: refused at load
    // with a message that says why, not with oneDNN's.
    auto encoder =
        Encoder::Load(DataPath("tiny_bert"), EncoderOptions{bound.precision});
    ASSERT_FALSE(encoder.ok());
    EXPECT_EQ(encoder.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(encoder.status().message(),
                ::testing::HasSubstr("needs a CPU with AVX-512"));
    return;
  }
  std::string dir;
  std::mt19937 rng(11);
  std::vector<SequenceTask> tasks;
  if (std::string(bound.model) == "demo") {
    // A directory of its own: ctest -j2 runs bf16_demo and int8_demo at the
    // same time, and another suite on the machine may run this test too; a
    // shared /tmp/precision_model was read half-written ("config.json: not a
    // JSON object").
    dir = attnserve::testing::MakeTempDir("precision_model");
    ASSERT_TRUE(WriteDemoModel(dir).ok());
    for (int len : {5, 17, 64, 128}) {
      SequenceTask task;
      task.token_ids.push_back(2);
      for (int i = 1; i < len - 1; ++i) {
        task.token_ids.push_back(5 + rng() % 150);
      }
      task.token_ids.push_back(3);
      tasks.push_back(task);
    }
  } else {
    dir = DataPath(bound.model);
    for (const auto& g : ReadGolden(dir + "/golden.json")) {
      tasks.push_back(TaskFor(g, 0));
    }
  }
  auto run = [&](Precision p) -> std::vector<SequenceOutput> {
    EncoderOptions options;
    options.precision = p;
    options.bf16_attention =
        bound.bf16_attention ? Bf16Attention::kAlways : Bf16Attention::kNever;
    auto encoder = Encoder::Load(dir, options);
    EXPECT_TRUE(encoder.ok()) << encoder.status();
    if (!encoder.ok()) return {};
    const int layers = (*encoder)->info().config.num_layers;
    for (SequenceTask& t : tasks) {
      t.want_hidden = true;
      t.attention_layers.clear();
      for (int l = 0; l < layers; ++l) t.attention_layers.push_back(l);
    }
    auto out = (*encoder)->Forward(tasks);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<SequenceOutput>{};
  };
  const auto fp32 = run(Precision::kFloat32);
  const auto out = run(bound.precision);
  ASSERT_EQ(fp32.size(), tasks.size());
  ASSERT_EQ(out.size(), tasks.size());
  const int64_t hidden = fp32[0].hidden.size() / tasks[0].token_ids.size();
  // Worst over the sequences, NaN-propagating: a NaN anywhere fails.
  double worst_cos = 1, worst_attention = 0, sum_attention = 0;
  int64_t n_attention = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const double cos = MinTokenCosine(out[i].hidden, fp32[i].hidden, hidden);
    const double diff = MaxAbsDiff(out[i].attention, fp32[i].attention);
    worst_cos = std::isnan(cos) ? cos : std::min(worst_cos, cos);
    worst_attention = std::isnan(diff) ? diff : std::max(worst_attention, diff);
    if (out[i].attention.size() != fp32[i].attention.size()) continue;
    for (size_t k = 0; k < out[i].attention.size(); ++k) {
      sum_attention +=
          std::fabs(double{out[i].attention[k]} - double{fp32[i].attention[k]});
    }
    n_attention += out[i].attention.size();
  }
  const double mean_attention =
      n_attention > 0 ? sum_attention / n_attention : NAN;
  std::printf(
      "[ %s ] min token cosine to fp32 = %.6f, attention diff mean %.3g, "
      "max %.3g\n",
      BoundName(bound).c_str(), worst_cos, mean_attention, worst_attention);
  // Without VNNI int8 weights keep 7 bits (cpu.h): the demo model's largest
  // attention difference measured 0.295 there (ONEDNN_MAX_CPU_ISA=AVX2 or
  // AVX512_CORE), against 0.164 with VNNI; the other figures stay in bounds.
  const double max_attention_bound =
      bound.max_attention_diff *
      (bound.precision == Precision::kInt8 && Int8WeightMax() < 127 ? 2 : 1);
  EXPECT_GE(worst_cos, bound.min_token_cosine);
  EXPECT_LE(mean_attention, bound.max_mean_attention_diff);
  EXPECT_LE(worst_attention, max_attention_bound);
}

// Bounds about 10× what was measured (AMD EPYC, oneDNN 2.6.3, per-token int8
// scales), as 1 − cosine and as attention differences:
//   bf16 demo: 1 − cos 1.1e-4, attention mean 2.2e-4, max 0.043
//   int8 demo: 1 − cos 5.6e-3, attention mean 9.0e-4, max 0.164
//   bf16 tiny_bert: 1 − cos 2.9e-5, attention mean 1.3e-4, max 5.7e-3
//   int8 tiny_bert: 1 − cos 4.7e-4, attention mean 4.3e-4, max 0.018
//   bf16 + bf16 attention, demo: 1 − cos 3.7e-4, mean 2.7e-4, max 0.052
//   bf16 + bf16 attention, tiny_bert: 1 − cos 3.7e-5, mean 1.5e-4, max 4.7e-3
// Two exceptions: int8's cosine on the demo model keeps the documented
// promise (README: ≥ 0.99, 1.8× the measured loss), as does bf16's with bf16
// attention (≥ 0.999, 2.7×), and the largest attention
// difference on the demo model is bounded at about 2× (0.1 and 0.3): its
// peaked rows make the maximum large, and 10× would bound nothing.
INSTANTIATE_TEST_SUITE_P(
    Bounds, EncoderPrecisionTest,
    ::testing::Values(
        PrecisionBound{Precision::kBFloat16, "demo", 0.999, 2e-3, 0.1},
        PrecisionBound{Precision::kInt8, "demo", 0.99, 9e-3, 0.3},
        PrecisionBound{Precision::kBFloat16, "tiny_bert", 0.9997, 1.3e-3, 0.05},
        PrecisionBound{Precision::kInt8, "tiny_bert", 0.995, 4e-3, 0.15},
        PrecisionBound{Precision::kBFloat16, "demo", 0.999, 2e-3, 0.1, true},
        PrecisionBound{Precision::kBFloat16, "tiny_bert", 0.9997, 1.3e-3, 0.05,
                       true}),
    [](const ::testing::TestParamInfo<PrecisionBound>& info) {
      return BoundName(info.param);
    });

}  // namespace
}  // namespace attnserve
