// The batching contract in every precision: a sequence's outputs are the
// same bits whether it runs alone or packed with other sequences (of other
// lengths, or equal ones that share its attention group), in any order. The
// server batches whatever is queued, so without this the same text would get
// different answers under different load.
//
// The contract rests on oneDNN's brgemm matmuls (AVX-512 and AMX hosts), whose
// result for a row does not depend on how many rows are multiplied with it.
// Where oneDNN runs gemm:jit instead (AVX2 CPUs, or ONEDNN_MAX_CPU_ISA=AVX2;
// ctest's isa_AVX2_* runs), fp32 results move in the last bits with the
// batch: there the test checks the difference stays below kJitBatchBound and
// prints it (README, "Precision").
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/encoder/encoder.h"
#include "model/kernels/cpu.h"
#include "model/kernels/linear.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::SameBits;

// fp32 difference between a sequence alone and batched where the linear
// layers run gemm:jit (measured on the demo model under AVX2: ≤ 3.1e-6 on
// hidden states of magnitude ≈ 3; about 10× that).
constexpr double kJitBatchBound = 4e-5;

// True where the linear layers of precision `p` run a brgemm kernel.
bool BrgemmLinear(Precision p) {
  DnnlContext ctx;
  LinearKernels kernels(&ctx, 64, 32, LinearSpec{Activation::kNone, false, p});
  auto name = kernels.ImplName(RowBucket(100));
  return name.ok() && name->rfind("brg", 0) == 0;
}

// Same bits where brgemm runs, within kJitBatchBound elsewhere.
::testing::AssertionResult SameOrClose(Precision p,
                                       const std::vector<float>& got,
                                       const std::vector<float>& want) {
  if (BrgemmLinear(p)) return SameBits(got, want);
  const double diff = MaxAbsDiff(got, want);
  std::printf("[ gemm:jit ] batched vs alone: max abs diff %.3g\n", diff);
  if (diff <= kJitBatchBound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "batched vs alone differ by " << diff << " > " << kJitBatchBound;
}

class DeterminismTest : public ::testing::TestWithParam<Precision> {
 protected:
  static void SetUpTestSuite() {
    // A directory of this process's own: ctest runs each precision as a
    // process of its own, at the same time, and a shared path raced (one
    // read config.json while another rewrote it: "not a JSON object").
    std::string dir = ::testing::TempDir() + "determinism_model.XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = new std::string(dir);
    ASSERT_TRUE(WriteDemoModel(*dir_).ok());  // hidden 128, 4 layers, 8 heads
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string* dir_;
};
std::string* DeterminismTest::dir_ = nullptr;

SequenceTask RandomTask(std::mt19937& rng, int length, bool loud) {
  SequenceTask task;
  task.token_ids.push_back(2);
  for (int i = 1; i < length - 1; ++i) {
    // A "loud" sequence repeats one token: its activations differ in scale
    // from the others', which is what a per-batch quantization scale feels.
    task.token_ids.push_back(loud ? 7 : 5 + rng() % 150);
  }
  task.token_ids.push_back(3);
  task.want_hidden = true;
  task.attention_layers = {0, 3};
  task.pooling = PoolingMode::kMean;
  return task;
}

TEST_P(DeterminismTest, AloneAndBatchedGiveTheSameBits) {
  if (absl::Status s = CheckPrecisionSupported(GetParam()); !s.ok()) {
    GTEST_SKIP() << s;
  }
  EncoderOptions options;
  options.precision = GetParam();
  auto encoder = Encoder::Load(*dir_, options);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::mt19937 rng(5);
  std::vector<SequenceTask> pool;
  for (int length : {1, 2, 5, 5, 17, 33, 64, 128}) {
    pool.push_back(RandomTask(rng, std::max(length, 2), false));
  }
  pool.push_back(RandomTask(rng, 40, /*loud=*/true));
  std::vector<SequenceOutput> alone;
  for (const SequenceTask& task : pool) {
    auto out = (*encoder)->Forward({&task, 1});
    ASSERT_TRUE(out.ok()) << out.status();
    alone.push_back((*out)[0]);
  }
  for (int trial = 0; trial < 8; ++trial) {
    std::vector<size_t> pick;
    std::vector<SequenceTask> batch;
    const int n = 2 + rng() % 10;
    for (int k = 0; k < n; ++k) {
      pick.push_back(rng() % pool.size());
      batch.push_back(pool[pick.back()]);
    }
    auto out = (*encoder)->Forward(batch);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t k = 0; k < batch.size(); ++k) {
      SCOPED_TRACE(::testing::Message()
                   << "trial " << trial << ", sequence " << pick[k]
                   << " (length " << pool[pick[k]].token_ids.size()
                   << ") in a batch of " << n);
      const Precision p = GetParam();
      EXPECT_TRUE(SameOrClose(p, (*out)[k].hidden, alone[pick[k]].hidden));
      EXPECT_TRUE(
          SameOrClose(p, (*out)[k].attention, alone[pick[k]].attention));
      EXPECT_TRUE(
          SameOrClose(p, (*out)[k].embedding, alone[pick[k]].embedding));
    }
  }
}

// An encoder warmed up at load (every row bucket's primitives made before
// the first pass, as attnserve does) gives the same bits as one that makes
// them on first use.
TEST_P(DeterminismTest, WarmUpChangesNoBits) {
  if (absl::Status s = CheckPrecisionSupported(GetParam()); !s.ok()) {
    GTEST_SKIP() << s;
  }
  auto lazy = Encoder::Load(*dir_, EncoderOptions{GetParam()});
  EncoderOptions warm_options{GetParam()};
  warm_options.warm_up_rows = 600;
  auto warm = Encoder::Load(*dir_, warm_options);
  ASSERT_TRUE(lazy.ok() && warm.ok());
  std::mt19937 rng(8);
  std::vector<SequenceTask> batch;
  for (int length : {3, 17, 128, 128, 64, 9}) {
    batch.push_back(RandomTask(rng, length, false));
  }
  auto a = (*lazy)->Forward(batch);
  auto b = (*warm)->Forward(batch);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t k = 0; k < batch.size(); ++k) {
    EXPECT_TRUE(SameBits((*b)[k].hidden, (*a)[k].hidden)) << k;
    EXPECT_TRUE(SameBits((*b)[k].attention, (*a)[k].attention)) << k;
  }
}

// RankHeads' reuse: a task started at layer l from the layer inputs of an
// unmasked pass gives the full pass's bits with any mask at or above l,
// batched with full passes and with tasks started at other layers.
TEST_P(DeterminismTest, StartingAtALayerGivesTheFullPassBits) {
  if (absl::Status s = CheckPrecisionSupported(GetParam()); !s.ok()) {
    GTEST_SKIP() << s;
  }
  auto encoder = Encoder::Load(*dir_, EncoderOptions{GetParam()});
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const ModelConfig& c = (*encoder)->info().config;
  const int layers = c.num_layers, heads = c.num_heads;
  std::mt19937 rng(11);
  std::vector<SequenceTask> base;
  for (int length : {2, 5, 17, 64, 128}) {
    base.push_back(RandomTask(rng, length, false));
    base.back().want_layer_inputs = true;
  }
  auto unmasked = (*encoder)->Forward(base);
  ASSERT_TRUE(unmasked.ok()) << unmasked.status();
  std::vector<SequenceTask> full, started;
  for (size_t i = 0; i < base.size(); ++i) {
    const size_t t = base[i].token_ids.size();
    ASSERT_EQ((*unmasked)[i].layer_inputs.size(), layers * t * c.hidden_size);
    auto inputs =
        std::make_shared<const std::vector<float>>((*unmasked)[i].layer_inputs);
    for (int l = 0; l < layers; ++l) {
      SequenceTask task = base[i];
      task.want_layer_inputs = false;
      task.head_mask.assign(layers * heads, 0);
      // One head, a whole layer, or nothing masked at l.
      const int kind = rng() % 3;
      for (int h = 0; h < heads; ++h) {
        if (kind == 1 ? h == int(rng() % heads) : kind == 2) {
          task.head_mask[l * heads + h] = 1;
        }
      }
      task.attention_layers = {layers - 1};
      full.push_back(task);
      task.start_layer = l;
      task.layer_inputs = inputs;
      started.push_back(std::move(task));
    }
  }
  std::vector<SequenceOutput> want;
  for (const SequenceTask& task : full) {
    auto out = (*encoder)->Forward({&task, 1});
    ASSERT_TRUE(out.ok()) << out.status();
    want.push_back((*out)[0]);
  }
  // Started tasks shuffled, with a few full passes among them.
  std::vector<size_t> order(started.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<SequenceTask> batch;
  std::vector<const SequenceOutput*> expected;
  for (size_t k = 0; k < order.size(); ++k) {
    batch.push_back(started[order[k]]);
    expected.push_back(&want[order[k]]);
    if (k % 7 == 0) {
      batch.push_back(full[order[k]]);
      expected.push_back(&want[order[k]]);
    }
  }
  for (size_t split : {batch.size(), size_t{9}}) {
    for (size_t from = 0; from < batch.size(); from += split) {
      const size_t n = std::min(split, batch.size() - from);
      auto out =
          (*encoder)->Forward(absl::MakeConstSpan(batch).subspan(from, n));
      ASSERT_TRUE(out.ok()) << out.status();
      for (size_t k = 0; k < n; ++k) {
        const SequenceTask& task = batch[from + k];
        SCOPED_TRACE(::testing::Message()
                     << "task " << from + k << ": length "
                     << task.token_ids.size() << ", start layer "
                     << task.start_layer << ", passes of " << split);
        const Precision p = GetParam();
        EXPECT_TRUE(
            SameOrClose(p, (*out)[k].hidden, expected[from + k]->hidden));
        EXPECT_TRUE(
            SameOrClose(p, (*out)[k].attention, expected[from + k]->attention));
        EXPECT_TRUE(
            SameOrClose(p, (*out)[k].embedding, expected[from + k]->embedding));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, DeterminismTest,
                         ::testing::Values(Precision::kFloat32,
                                           Precision::kBFloat16,
                                           Precision::kInt8),
                         [](const ::testing::TestParamInfo<Precision>& info) {
                           return std::string(PrecisionName(info.param));
                         });

// A task that starts above layer 0 is checked like any other input.
TEST(StartLayerTest, RefusesBadStarts) {
  std::string dir = ::testing::TempDir() + "start_layer_model.XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  ASSERT_TRUE(WriteDemoModel(dir).ok());
  auto encoder = Encoder::Load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const ModelConfig& c = (*encoder)->info().config;
  SequenceTask good;
  good.token_ids = {2, 40, 41, 3};
  good.start_layer = 2;
  good.layer_inputs = std::make_shared<const std::vector<float>>(
      c.num_layers * 4 * c.hidden_size, 0.5f);
  ASSERT_TRUE((*encoder)->Forward({good}).ok());
  auto refused = [&](SequenceTask task, const std::string& words) {
    auto out = (*encoder)->Forward({good, task});
    ASSERT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << words;
    EXPECT_THAT(out.status().message(), ::testing::HasSubstr(words));
    EXPECT_THAT(out.status().message(), ::testing::HasSubstr("sequences[1]"));
  };
  SequenceTask t = good;
  t.start_layer = c.num_layers;
  refused(t, absl::StrCat("start_layer ", c.num_layers, " is not in [0, "));
  t = good;
  t.start_layer = -1;
  refused(t, "start_layer -1");
  t = good;
  t.layer_inputs = nullptr;
  refused(t, "needs layer_inputs");
  t = good;
  t.token_ids.push_back(5);  // inputs for 4 tokens, 5 given
  refused(t, "needs layer_inputs");
  t = good;
  t.want_layer_inputs = true;
  refused(t, "want_layer_inputs needs start_layer 0");
  t = good;
  t.attention_layers = {1, 3};
  refused(t, "attention layer 1 is below start_layer 2");
  t = good;
  t.head_mask.assign(c.num_layers * c.num_heads, 0);
  t.head_mask[1 * c.num_heads + 3] = 1;
  refused(t, "masks layer 1 head 3, below start_layer 2");
}

}  // namespace
}  // namespace attnserve
