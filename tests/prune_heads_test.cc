// Head pruning (EncoderOptions::prune_heads, attnserve --prune_heads): the
// pruned model equals the unpruned one with the same heads in head_mask, and
// a PyTorch golden made with prune_heads' row/column deletion
// (tools/gen_golden.py writes tiny_bert/golden_pruned.json); the API keeps the
// checkpoint's head numbering and refuses pruned heads by name.
#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/encoder/encoder.h"
#include "model/encoder/head_ranking.h"
#include "tests/golden.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kL = 3, kH = 4;

// Layer 0 keeps 2 heads, layer 1 none, layer 2 three.
const std::vector<std::pair<int, int>> kPruned = {
    {0, 1}, {0, 3}, {1, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 2}};

std::vector<uint8_t> MaskOf(const std::vector<std::pair<int, int>>& heads,
                            int layers, int per_layer) {
  std::vector<uint8_t> mask(layers * per_layer, 0);
  for (const auto& [l, h] : heads) mask[l * per_layer + h] = 1;
  return mask;
}

std::vector<std::pair<int, int>> HeadsOf(const std::vector<uint8_t>& mask,
                                         int per_layer) {
  std::vector<std::pair<int, int>> heads;
  for (size_t k = 0; k < mask.size(); ++k) {
    if (mask[k]) heads.emplace_back(int(k) / per_layer, int(k) % per_layer);
  }
  return heads;
}

// A random 3 × 4 model, hidden 64: the same checkpoint loads pruned and not.
std::string RandomModel() {
  static const std::string* dir = [] {
    auto* d = new std::string(MakeTempDir("prune_random"));
    DemoModelOptions options;
    options.hidden_size = 64;
    options.num_layers = kL;
    options.num_heads = kH;
    options.intermediate_size = 128;
    options.max_position_embeddings = 64;
    EXPECT_TRUE(WriteDemoModel(*d, options).ok());
    return d;
  }();
  return *dir;
}

std::vector<SequenceTask> RandomTasks(std::vector<uint8_t> head_mask) {
  std::mt19937 rng(3);
  std::vector<SequenceTask> tasks;
  for (int t : {1, 7, 7, 30, 64}) {  // T = 1, equal lengths, the largest
    SequenceTask task;
    for (int i = 0; i < t; ++i) task.token_ids.push_back(rng() % 200);
    task.want_hidden = true;
    task.attention_layers = {0, 1, 2};
    task.head_mask = head_mask;
    task.pooling = PoolingMode::kMean;
    tasks.push_back(std::move(task));
  }
  return tasks;
}

TEST(PruneHeadsTest, PrunedModelEqualsMaskedModel) {
  auto full = Encoder::Load(RandomModel());
  ASSERT_TRUE(full.ok()) << full.status();
  EncoderOptions options;
  options.prune_heads = kPruned;
  auto pruned = Encoder::Load(RandomModel(), options);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ((*pruned)->info().heads_per_layer, (std::vector<int>{2, 0, 3}));
  EXPECT_EQ((*full)->info().heads_per_layer, (std::vector<int>{4, 4, 4}));
  EXPECT_EQ((*pruned)->info().pruned_count(), 7);

  auto masked_out = (*full)->Forward(RandomTasks(MaskOf(kPruned, kL, kH)));
  ASSERT_TRUE(masked_out.ok()) << masked_out.status();
  auto pruned_out = (*pruned)->Forward(RandomTasks({}));
  ASSERT_TRUE(pruned_out.ok()) << pruned_out.status();
  for (size_t i = 0; i < masked_out->size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "task " << i);
    const SequenceOutput& m = (*masked_out)[i];
    const SequenceOutput& p = (*pruned_out)[i];
    EXPECT_LE(MaxAbsDiff(p.hidden, m.hidden), 1e-5);
    EXPECT_LE(MaxAbsDiff(p.embedding, m.embedding), 1e-5);
    // Maps: the kept heads' are the masked model's (maps are taken before
    // masking), the pruned heads' are zero.
    ASSERT_EQ(p.attention.size(), m.attention.size());
    const size_t map = m.attention.size() / (kL * kH);
    for (int k = 0; k < kL * kH; ++k) {
      const bool is_pruned = MaskOf(kPruned, kL, kH)[k];
      for (size_t e = 0; e < map; ++e) {
        const float want = is_pruned ? 0.f : m.attention[k * map + e];
        ASSERT_NEAR(p.attention[k * map + e], want, 1e-5) << "head " << k;
      }
    }
  }
}

TEST(PruneHeadsTest, MatchesPyTorchPruneHeadsGolden) {
  const std::vector<HeadMaskCase> cases =
      ReadHeadMaskGolden(DataPath("tiny_bert/golden_pruned.json"));
  ASSERT_EQ(cases.size(), 2u);
  for (const HeadMaskCase& c : cases) {
    SCOPED_TRACE(c.name);
    EncoderOptions options;
    options.prune_heads = HeadsOf(c.head_mask, 4);
    auto encoder = Encoder::Load(DataPath("tiny_bert"), options);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    std::vector<SequenceTask> tasks;
    for (const GoldenSequence& g : c.sequences) {
      SequenceTask task;
      task.token_ids = g.token_ids;
      task.token_type_ids = g.token_type_ids;
      task.want_hidden = true;
      task.attention_layers = {0, 1};
      tasks.push_back(std::move(task));
    }
    auto out = (*encoder)->Forward(tasks);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < tasks.size(); ++i) {
      EXPECT_LE(MaxAbsDiff((*out)[i].hidden, c.sequences[i].hidden),
                kHiddenTolerance)
          << c.sequences[i].name;
      EXPECT_LE(MaxAbsDiff((*out)[i].attention, c.sequences[i].attention),
                kAttentionTolerance)
          << c.sequences[i].name;
    }
  }
}

TEST(PruneHeadsTest, RefusesHeadsTheModelDoesNotHave) {
  for (const auto& [heads, message] :
       std::vector<std::pair<std::vector<std::pair<int, int>>, std::string>>{
           {{{3, 0}}, "3:0 is not a head of this model"},
           {{{0, 4}}, "0:4 is not a head of this model"},
           {{{0, -1}}, "0:-1 is not a head"},
           {{{1, 2}, {1, 2}}, "1:2 is given twice"}}) {
    EncoderOptions options;
    options.prune_heads = heads;
    auto encoder = Encoder::Load(RandomModel(), options);
    ASSERT_FALSE(encoder.ok());
    EXPECT_EQ(encoder.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(encoder.status().message()), HasSubstr(message));
  }
}

TEST(PruneHeadsTest, ParsesTheFlag) {
  auto heads = ParsePruneHeads("0:1, 2:3,");
  ASSERT_TRUE(heads.ok()) << heads.status();
  EXPECT_EQ(*heads, (std::vector<std::pair<int, int>>{{0, 1}, {2, 3}}));
  EXPECT_TRUE(ParsePruneHeads("")->empty());
  for (const char* bad : {"1", "a:b", "1:2:3", "1:*"}) {
    EXPECT_FALSE(ParsePruneHeads(bad).ok()) << bad;
  }
}

TEST(PruneHeadsTest, MaskingAPrunedHeadIsRefused) {
  EncoderOptions options;
  options.prune_heads = kPruned;
  auto encoder = Encoder::Load(RandomModel(), options);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  auto out = (*encoder)->Forward(RandomTasks(MaskOf({{2, 2}}, kL, kH)));
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("layer 2 head 2, which was pruned"));
}

TEST(PruneHeadsTest, RankHeadsLeavesPrunedHeadsOut) {
  EncoderOptions options;
  options.prune_heads = kPruned;
  auto encoder = Encoder::Load(RandomModel(), options);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ(RankHeadsRunsPerSequence((*encoder)->info()), 1 + 5 + 3);
  auto ranking = RankHeads(**encoder, {{{2, 10, 11, 12, 3}, {}}});
  ASSERT_TRUE(ranking.ok()) << ranking.status();
  ASSERT_EQ(ranking->heads.size(), 5u);
  for (const HeadImportance& h : ranking->heads) {
    EXPECT_FALSE((*encoder)->info().IsPruned(h.layer, h.head))
        << h.layer << ":" << h.head;
  }
  EXPECT_EQ(ranking->layers.size(), 3u);
}

// Through gRPC: ModelInfo reports the heads, pruned heads are refused by name.
class PrunedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EncoderOptions options;
    options.prune_heads = {{0, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 3}};
    auto encoder = Encoder::Load(kModelDir, options);  // tiny_bert, 2 × 4
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    auto tokenizer = LoadTokenizerFor(kModelDir, (*encoder)->info());
    auto server =
        Server::Start(TestOptions(), *std::move(encoder), std::move(tokenizer));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Encoder::NewStub(NewChannel(server_->port()));
  }
  static inline Server* server_ = nullptr;
  std::unique_ptr<v1::Encoder::Stub> stub_;
};

TEST_F(PrunedServerTest, ModelInfoReportsHeadsPerLayerAndPrunedHeads) {
  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub_, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.num_heads(), 4);
  EXPECT_EQ(std::vector<int>(info.heads_per_layer().begin(),
                             info.heads_per_layer().end()),
            (std::vector<int>{3, 0}));
  ASSERT_EQ(info.pruned_heads_size(), 5);
  EXPECT_EQ(info.pruned_heads(0).layer(), 0);
  EXPECT_EQ(info.pruned_heads(0).head(), 1);
}

TEST_F(PrunedServerTest, NamingAPrunedHeadIsInvalidArgument) {
  v1::EncodeRequest request;
  request.add_sequences()->set_text("hello world");
  request.mutable_attention()->add_heads(1);
  request.mutable_attention()->add_layers(0);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("attention.heads[0]: layer 0 head 1 was pruned"));

  v1::EncodeRequest masked;
  masked.add_sequences()->set_text("hello world");
  v1::HeadRef* ref = masked.add_head_mask();
  ref->set_layer(1);
  ref->set_head(3);
  status = CallEncode(*stub_, masked, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("head_mask[0]: layer 1 head 3 was pruned"));
}

TEST_F(PrunedServerTest, AllHeadsGivesZeroMapsForPrunedHeads) {
  v1::EncodeRequest request;
  request.add_sequences()->set_text("hello world");
  request.mutable_attention();  // all layers, all heads
  v1::EncodeResponse response;
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  const v1::Tensor& a = response.results(0).attention();
  ASSERT_EQ(Shape(a).size(), 4u);
  const int64_t t = Shape(a)[2];
  const std::vector<float> maps = DecodeFloat32(a);
  auto row_sum = [&](int layer, int head) {
    double sum = 0;
    for (int64_t j = 0; j < t; ++j)
      sum += maps[((layer * 4 + head) * t) * t + j];
    return sum;
  };
  EXPECT_NEAR(row_sum(0, 0), 1.0, 1e-5);
  EXPECT_EQ(row_sum(0, 1), 0.0);
  EXPECT_EQ(row_sum(1, 2), 0.0);
}

}  // namespace
}  // namespace attnserve::testing
