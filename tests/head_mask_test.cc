// Head masking (SequenceTask::head_mask) against PyTorch goldens made with
// Hugging Face's head_mask semantics (tools/gen_golden.py writes
// tiny_bert/golden_head_mask.json, tools/gen_family_golden.py the RoBERTa and
// DistilBERT ones): one head, a whole layer, all heads.
// Maps are returned as computed before masking.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/encoder/encoder.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::attnserve::testing::FindGolden;
using ::attnserve::testing::GoldenSequence;
using ::attnserve::testing::HeadMaskCase;
using ::attnserve::testing::kAttentionTolerance;
using ::attnserve::testing::kHiddenTolerance;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::ReadGolden;
using ::attnserve::testing::ReadHeadMaskGolden;

SequenceTask TaskFor(const GoldenSequence& g, std::vector<uint8_t> head_mask,
                     int layers) {
  SequenceTask task;
  task.token_ids = g.token_ids;
  task.token_type_ids = g.token_type_ids;
  task.want_hidden = true;
  for (int l = 0; l < layers; ++l) task.attention_layers.push_back(l);
  task.head_mask = std::move(head_mask);
  task.pooling = PoolingMode::kMean;
  return task;
}

// One checkpoint per family that has head-mask goldens (tests/data/<dir>).
class HeadMaskTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string dir = DataPath(GetParam());
    auto encoder = Encoder::Load(dir);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    encoder_ = std::move(*encoder);
    layers_ = encoder_->info().config.num_layers;
    heads_ = encoder_->info().config.num_heads;
    cases_ = ReadHeadMaskGolden(dir + "/golden_head_mask.json");
    plain_ = ReadGolden(dir + "/golden.json");
    ASSERT_EQ(cases_.size(), 3u);
    ASSERT_EQ(cases_[0].name, "layer0_head1");
    ASSERT_EQ(cases_[1].name, "layer1_all");
    ASSERT_EQ(cases_[2].name, "all_heads");
  }

  SequenceTask TaskFor(const GoldenSequence& g,
                       std::vector<uint8_t> head_mask) const {
    return attnserve::TaskFor(g, std::move(head_mask), layers_);
  }

  std::unique_ptr<Encoder> encoder_;
  int layers_ = 0, heads_ = 0;
  std::vector<HeadMaskCase> cases_;
  std::vector<GoldenSequence> plain_;
};

// Every case and sequence, plus the unmasked sequences, in ONE batch: masks
// differ per sequence of a Forward call (that is how ablations are batched).
TEST_P(HeadMaskTest, MatchesPyTorchInOneMixedBatch) {
  std::vector<SequenceTask> tasks;
  std::vector<const GoldenSequence*> want;
  for (const HeadMaskCase& c : cases_) {
    for (const GoldenSequence& g : c.sequences) {
      tasks.push_back(TaskFor(g, c.head_mask));
      want.push_back(&g);
    }
  }
  for (const GoldenSequence& g : cases_[0].sequences) {
    tasks.push_back(TaskFor(g, {}));
    want.push_back(&FindGolden(plain_, g.name));
  }
  auto out = encoder_->Forward(tasks);
  ASSERT_TRUE(out.ok()) << out.status();
  double worst_hidden = 0, worst_attention = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "task " << i << " " << want[i]->name);
    const double dh = MaxAbsDiff((*out)[i].hidden, want[i]->hidden);
    const double da = MaxAbsDiff((*out)[i].attention, want[i]->attention);
    EXPECT_LE(dh, kHiddenTolerance);
    EXPECT_LE(da, kAttentionTolerance);
    EXPECT_LE(MaxAbsDiff((*out)[i].embedding, want[i]->mean_pooled),
              kHiddenTolerance);
    worst_hidden = std::max(worst_hidden, dh);
    worst_attention = std::max(worst_attention, da);
  }
  std::printf(
      "[ head mask ] max |hidden - torch| = %.3g, max |attention - torch| = "
      "%.3g\n",
      worst_hidden, worst_attention);
}

// Each case alone, the way a request with one head_mask runs.
TEST_P(HeadMaskTest, MatchesPyTorchPerCase) {
  for (const HeadMaskCase& c : cases_) {
    SCOPED_TRACE(c.name);
    std::vector<SequenceTask> tasks;
    for (const GoldenSequence& g : c.sequences)
      tasks.push_back(TaskFor(g, c.head_mask));
    auto out = encoder_->Forward(tasks);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < tasks.size(); ++i) {
      SCOPED_TRACE(c.sequences[i].name);
      EXPECT_LE(MaxAbsDiff((*out)[i].hidden, c.sequences[i].hidden),
                kHiddenTolerance);
      EXPECT_LE(MaxAbsDiff((*out)[i].attention, c.sequences[i].attention),
                kAttentionTolerance);
    }
  }
}

// Maps come back as computed before masking: up to and including the first
// masked layer they are the unmasked model's maps, rows summing to 1 even for
// switched-off heads; the hidden states do change.
TEST_P(HeadMaskTest, MapsAreReturnedBeforeMasking) {
  const int64_t heads = heads_;
  for (const HeadMaskCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const int first_masked =
        std::find(c.head_mask.begin(), c.head_mask.end(), 1) -
        c.head_mask.begin();
    const int first_layer = first_masked / heads;
    for (const GoldenSequence& g : c.sequences) {
      SCOPED_TRACE(g.name);
      const GoldenSequence& plain = FindGolden(plain_, g.name);
      auto out = encoder_->Forward({TaskFor(g, c.head_mask)});
      ASSERT_TRUE(out.ok()) << out.status();
      const std::vector<float>& att = (*out)[0].attention;  // (L, heads, t, t)
      const int64_t t = g.length(), block = heads * t * t;
      for (int l = 0; l <= first_layer; ++l) {
        const std::vector<float> got(att.begin() + l * block,
                                     att.begin() + (l + 1) * block);
        const std::vector<float> want(
            plain.attention.begin() + l * block,
            plain.attention.begin() + (l + 1) * block);
        EXPECT_LE(MaxAbsDiff(got, want), kAttentionTolerance) << "layer " << l;
      }
      for (int64_t row = 0; row < layers_ * heads * t; ++row) {
        double sum = 0;
        for (int64_t j = 0; j < t; ++j) sum += att[row * t + j];
        EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
      }
      // The mask matters: far more than the tolerance.
      EXPECT_GT(MaxAbsDiff((*out)[0].hidden, plain.hidden),
                100 * kHiddenTolerance);
    }
  }
}

// An all-zero mask is the same as no mask.
TEST_P(HeadMaskTest, ZeroMaskIsNoMask) {
  for (const GoldenSequence& g : cases_[0].sequences) {
    SCOPED_TRACE(g.name);
    auto out = encoder_->Forward(
        {TaskFor(g, std::vector<uint8_t>(layers_ * heads_, 0)),
         TaskFor(g, {})});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_LE(MaxAbsDiff((*out)[0].hidden, (*out)[1].hidden), 1e-6);
    EXPECT_LE(MaxAbsDiff((*out)[0].hidden, FindGolden(plain_, g.name).hidden),
              kHiddenTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, HeadMaskTest,
                         ::testing::Values("tiny_bert", "tiny_roberta",
                                           "tiny_distilbert"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);  // tests/data/<dir>
                         });

}  // namespace
}  // namespace attnserve
