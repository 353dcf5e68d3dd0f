// Heads through gRPC, in process: per-head statistics (against
// model/head_stats computed here from the maps the server returned, plus a few
// by hand), omit_maps, query rows, rollout, head_mask against the PyTorch
// goldens (golden_head_mask.json), and RankHeads on a checkpoint built so one
// head matters (WriteOneHeadModel, tests/model_testing.h), its chunked passes
// through the batcher, its limits, deadline and shutdown.
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/encoder/head_ranking.h"
#include "model/encoder/head_stats.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using namespace ::attnserve::testing;  // NOLINT: the server test helpers
using ::testing::HasSubstr;

// Statistics go through float on the wire.
constexpr double kStatsTolerance = 1e-6;

ServerOptions HeadsOptions() {
  ServerOptions options = TestOptions();
  options.limits.max_rank_heads_tokens = 300;
  return options;
}

// (layers, heads, rows, T) → the (heads, T, T) block of response layer l.
std::vector<float> LayerBlock(const std::vector<float>& maps, int64_t l,
                              int64_t heads, int64_t t) {
  const int64_t n = heads * t * t;
  return {maps.begin() + l * n, maps.begin() + (l + 1) * n};
}

class ServerHeadsTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() { StartSuite(HeadsOptions()); }
};

TEST_F(ServerHeadsTest, StatsMatchHeadStatsOfTheReturnedMaps) {
  const std::vector<int> layers = {1, 0}, heads = {3, 1, 2};
  v1::EncodeRequest request;
  v1::Sequence* pair = request.add_sequences();
  pair->set_text("the cat sat on the mat");
  pair->set_text_pair("it was red");  // two [SEP]s
  AddSequence(Golden("len12"), &request);
  v1::AttentionRequest* a = request.mutable_attention();
  a->mutable_layers()->Add(layers.begin(), layers.end());
  a->mutable_heads()->Add(heads.begin(), heads.end());
  a->set_stats(true);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  for (int s = 0; s < 2; ++s) {
    SCOPED_TRACE(s);
    const v1::SequenceResult& r = response.results(s);
    const int64_t t = r.token_ids_size();
    const std::vector<float> maps = DecodeFloat32(r.attention());
    ASSERT_EQ(Shape(r.attention()), (std::vector<int64_t>{2, 3, t, t}));
    std::vector<int64_t> sep;
    for (int64_t j = 0; j < t; ++j) {
      if (r.tokens(j) == "[SEP]") sep.push_back(j);
    }
    ASSERT_EQ(sep.size(), s == 0 ? 2u : 1u);
    ASSERT_EQ(r.head_stats_size(), 6);
    ASSERT_EQ(r.layer_stats_size(), 2);
    for (int l = 0; l < 2; ++l) {
      const std::vector<float> block = LayerBlock(maps, l, 3, t);
      auto want = ComputeHeadStats(block, 3, t, sep, layers[l]);
      auto want_layer = ComputeLayerStats(block, 3, t, layers[l]);
      ASSERT_TRUE(want.ok() && want_layer.ok());
      for (int k = 0; k < 3; ++k) {
        const v1::HeadStats& got = r.head_stats(l * 3 + k);
        const HeadStats& w = (*want)[k];
        EXPECT_EQ(got.layer(), layers[l]);
        EXPECT_EQ(got.head(), heads[k]);
        EXPECT_NEAR(got.entropy(), w.entropy, kStatsTolerance);
        EXPECT_NEAR(got.max_weight(), w.max_weight, kStatsTolerance);
        EXPECT_NEAR(got.mean_distance(), w.mean_distance, 1e-5);
        EXPECT_NEAR(got.cls_weight(), w.cls_weight, kStatsTolerance);
        EXPECT_NEAR(got.sep_weight(), w.sep_weight, kStatsTolerance);
        EXPECT_NEAR(got.self_weight(), w.self_weight, kStatsTolerance);
        EXPECT_NEAR(got.prev_weight(), w.prev_weight, kStatsTolerance);
        EXPECT_NEAR(got.next_weight(), w.next_weight, kStatsTolerance);
        // By hand: the weight on [CLS] and on the [SEP]s, mean over rows.
        const float* p = block.data() + k * t * t;
        double cls = 0, on_sep = 0;
        for (int64_t i = 0; i < t; ++i) {
          cls += p[i * t];
          for (int64_t j : sep) on_sep += p[i * t + j];
        }
        EXPECT_NEAR(got.cls_weight(), cls / t, kStatsTolerance);
        EXPECT_NEAR(got.sep_weight(), on_sep / t, kStatsTolerance);
        EXPECT_GT(got.sep_weight(), 0);
      }
      const v1::LayerStats& ls = r.layer_stats(l);
      EXPECT_EQ(ls.layer(), layers[l]);
      EXPECT_EQ(Shape(ls.js_divergence()), (std::vector<int64_t>{3, 3}));
      const std::vector<float> js = DecodeFloat32(ls.js_divergence());
      for (int k = 0; k < 9; ++k) {
        EXPECT_NEAR(js[k], want_layer->js_divergence[k], kStatsTolerance);
      }
      EXPECT_NEAR(ls.diversity(), want_layer->diversity, kStatsTolerance);
      EXPECT_GT(ls.diversity(), 0);
    }
  }
}

TEST_F(ServerHeadsTest, OmitMapsLeavesOutOnlyTheMaps) {
  const GoldenSequence& len40 = Golden("len40");
  v1::EncodeRequest request;
  AddSequence(len40, &request);
  AddSequence(len40, &request);
  request.mutable_attention();  // 2 × 2 × 4 × 40² × 4 B = 102,400 > limit
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  request.mutable_attention()->set_stats(true);
  status = CallEncode(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("attention.omit_maps"));

  request.mutable_attention()->set_omit_maps(true);
  status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::SequenceResult& r = response.results(0);
  EXPECT_FALSE(r.has_attention());
  EXPECT_EQ(r.head_stats_size(), kLayers * kHeads);
  EXPECT_EQ(r.layer_stats_size(), kLayers);
  // The same statistics as computed from the golden maps.
  for (int l = 0; l < kLayers; ++l) {
    const std::vector<float> block = LayerBlock(len40.attention, l, kHeads, 40);
    auto want = ComputeHeadStats(block, kHeads, 40, {39}, l);
    ASSERT_TRUE(want.ok());
    for (int h = 0; h < kHeads; ++h) {
      const v1::HeadStats& got = r.head_stats(l * kHeads + h);
      EXPECT_NEAR(got.entropy(), (*want)[h].entropy, 1e-4);
      EXPECT_NEAR(got.sep_weight(), (*want)[h].sep_weight, 1e-5);
    }
  }

  // Rollout alone, no maps.
  request.mutable_attention()->set_stats(false);
  request.mutable_attention()->set_rollout(true);
  status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.results(0).has_attention());
  EXPECT_EQ(response.results(0).head_stats_size(), 0);
  EXPECT_EQ(Shape(response.results(0).rollout()),
            (std::vector<int64_t>{40, 40}));

  // Nothing left to return.
  request.mutable_attention()->set_rollout(false);
  status = CallEncode(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("attention.omit_maps"));
  EXPECT_THAT(status.error_message(), HasSubstr("nothing to return"));
}

TEST_F(ServerHeadsTest, QueryPositionsReturnThoseRowsInOrder) {
  const GoldenSequence& len12 = Golden("len12");
  const GoldenSequence& len23 = Golden("len23");
  const std::vector<int> rows = {11, 0, 5};
  for (v1::DataType dtype : {v1::FLOAT32, v1::FLOAT16}) {
    SCOPED_TRACE(dtype);
    v1::EncodeRequest request;
    AddSequence(len12, &request);
    AddSequence(len23, &request);
    v1::AttentionRequest* a = request.mutable_attention();
    a->add_layers(1);
    a->add_heads(2);
    a->add_heads(0);
    a->mutable_query_positions()->Add(rows.begin(), rows.end());
    a->set_dtype(dtype);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    int s = 0;
    for (const GoldenSequence* g : {&len12, &len23}) {
      const v1::Tensor& got = response.results(s++).attention();
      const int64_t t = g->length();
      EXPECT_EQ(Shape(got), (std::vector<int64_t>{1, 2, 3, t}));
      std::vector<float> want;
      for (int h : {2, 0}) {
        const float* map = g->attention.data() + (1 * kHeads + h) * t * t;
        for (int q : rows)
          want.insert(want.end(), map + q * t, map + (q + 1) * t);
      }
      const std::vector<float> values =
          dtype == v1::FLOAT16 ? DecodeFloat16(got) : DecodeFloat32(got);
      EXPECT_LE(MaxAbsDiff(values, want),
                dtype == v1::FLOAT16 ? 1e-3 : kAttentionTolerance);
    }
  }

  struct Bad {
    std::vector<int> positions;
    bool omit_maps;
    std::vector<std::string> parts;
  };
  const std::vector<Bad> bad = {
      {{3, 12},
       false,
       {"attention.query_positions[1] = 12 is out of range [0, 12)",
        "sequences[0], which has 12 tokens"}},
      {{-1}, false, {"attention.query_positions[0] = -1 is out of range"}},
      {{4, 2, 4},
       false,
       {"attention.query_positions[2] = 4 repeats "
        "attention.query_positions[0]"}},
      {{1}, true, {"query_positions", "omit_maps"}},
  };
  for (const Bad& b : bad) {
    v1::EncodeRequest request;
    AddSequence(len12, &request);
    AddSequence(len23, &request);
    v1::AttentionRequest* a = request.mutable_attention();
    a->mutable_query_positions()->Add(b.positions.begin(), b.positions.end());
    a->set_omit_maps(b.omit_maps);
    a->set_stats(b.omit_maps);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    for (const std::string& part : b.parts) {
      EXPECT_THAT(status.error_message(), HasSubstr(part));
    }
  }
}

TEST_F(ServerHeadsTest, RolloutIsAttentionRolloutOfAllLayersAndHeads) {
  for (const char* name : {"len1", "len12", "pair9"}) {
    SCOPED_TRACE(name);
    const GoldenSequence& g = Golden(name);
    const int64_t t = g.length();
    v1::EncodeRequest request;
    AddSequence(g, &request);
    // The selection applies to the maps, not to the rollout.
    request.mutable_attention()->add_layers(1);
    request.mutable_attention()->add_heads(0);
    request.mutable_attention()->set_rollout(true);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const v1::SequenceResult& r = response.results(0);
    EXPECT_EQ(Shape(r.attention()), (std::vector<int64_t>{1, 1, t, t}));
    EXPECT_LE(
        MaxAbsDiff(DecodeFloat32(r.attention()), GoldenAttention(g, {1}, {0})),
        kAttentionTolerance);

    // All maps, as the server returns them, then rolled out here.
    v1::EncodeRequest all;
    AddSequence(g, &all);
    all.mutable_attention();
    v1::EncodeResponse maps;
    ASSERT_TRUE(CallEncode(*stub_, all, &maps).ok());
    auto want = AttentionRollout(DecodeFloat32(maps.results(0).attention()),
                                 kLayers, kHeads, t);
    ASSERT_TRUE(want.ok()) << want.status();
    const std::vector<float> got = DecodeFloat32(r.rollout());
    EXPECT_EQ(Shape(r.rollout()), (std::vector<int64_t>{t, t}));
    ASSERT_EQ(got.size(), want->size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_NEAR(got[k], (*want)[k], 1e-6) << k;
    }
    for (int64_t i = 0; i < t; ++i) {
      double row = 0;
      for (int64_t j = 0; j < t; ++j) row += got[i * t + j];
      EXPECT_NEAR(row, 1.0, 1e-5);
    }
  }
}

TEST_F(ServerHeadsTest, HeadMaskMatchesHuggingFaceGoldens) {
  const std::vector<HeadMaskCase> cases =
      ReadHeadMaskGolden(std::string(kModelDir) + "/golden_head_mask.json");
  ASSERT_EQ(cases.size(), 3u);
  for (const HeadMaskCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::EncodeRequest request;
    for (const GoldenSequence& g : c.sequences) AddSequence(g, &request);
    for (int l = 0; l < kLayers; ++l) {
      for (int h = 0; h < kHeads; ++h) {
        if (!c.head_mask[l * kHeads + h]) continue;
        v1::HeadRef* ref = request.add_head_mask();
        ref->set_layer(l);
        ref->set_head(h);
      }
    }
    request.set_return_hidden_states(true);
    request.set_pooling(v1::POOLING_MEAN);
    request.mutable_attention()->set_stats(true);
    request.mutable_attention()->set_rollout(true);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (size_t s = 0; s < c.sequences.size(); ++s) {
      const GoldenSequence& g = c.sequences[s];
      SCOPED_TRACE(g.name);
      const v1::SequenceResult& r = response.results(s);
      EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.hidden_states()), g.hidden),
                kHiddenTolerance);
      // Maps as computed before masking (the golden keeps them so too).
      const std::vector<float> maps = DecodeFloat32(r.attention());
      EXPECT_LE(MaxAbsDiff(maps, g.attention), kAttentionTolerance);
      EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.embedding()), g.mean_pooled),
                kHiddenTolerance);
      // Statistics and rollout follow those maps.
      auto rollout = AttentionRollout(maps, kLayers, kHeads, g.length());
      ASSERT_TRUE(rollout.ok());
      const std::vector<float> got = DecodeFloat32(r.rollout());
      for (size_t k = 0; k < got.size(); ++k) {
        ASSERT_NEAR(got[k], (*rollout)[k], 1e-6);
      }
      EXPECT_EQ(r.head_stats_size(), kLayers * kHeads);
    }
  }
}

TEST(ServerHeadsNoVocabTest, StatsWithoutVocabHaveNoSepWeight) {
  const std::string dir = CopyTinyBert("tiny_bert_no_vocab", false);
  std::unique_ptr<Server> server = StartServer(TestOptions(), dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  v1::EncodeRequest request;
  AddSequence(FindGolden(golden, "pair9"), &request);  // holds id 3 twice
  request.mutable_attention()->set_stats(true);
  request.mutable_attention()->set_omit_maps(true);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results(0).head_stats_size(), kLayers * kHeads);
  for (const v1::HeadStats& h : response.results(0).head_stats()) {
    EXPECT_EQ(h.sep_weight(), 0.f);  // no vocab, no known [SEP]
    EXPECT_GT(h.cls_weight(), 0.f);
  }
}

v1::RankHeadsRequest OneHeadRequest() {
  v1::RankHeadsRequest request;
  v1::Sequence* first = request.add_sequences();
  for (int id : {2, 10, 11, 12, 13, 3}) first->add_token_ids(id);
  v1::Sequence* second = request.add_sequences();
  for (int id : {2, 20, 21, 22, 3, 30, 31, 3}) second->add_token_ids(id);
  for (int type : {0, 0, 0, 0, 0, 1, 1, 1}) second->add_token_type_ids(type);
  return request;
}

TEST(ServerRankHeadsTest, FindsTheOnlyHeadThatWritesInChunkedPasses) {
  const std::string dir = WriteOneHeadModel();
  ServerOptions options = TestOptions();
  options.batcher.max_batch_tokens = 32;  // 154 tokens of work → ≥ 5 passes
  std::unique_ptr<Server> server = StartServer(options, dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  // The library's answer, computed in one go on an encoder of our own.
  auto encoder = Encoder::Load(dir);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const std::vector<RankSequence> sequences = {
      {{2, 10, 11, 12, 13, 3}, {}},
      {{2, 20, 21, 22, 3, 30, 31, 3}, {0, 0, 0, 0, 0, 1, 1, 1}}};

  for (v1::Pooling pooling :
       {v1::POOLING_UNSPECIFIED, v1::POOLING_CLS, v1::POOLING_POOLER}) {
    SCOPED_TRACE(pooling);
    v1::RankHeadsRequest request = OneHeadRequest();
    ASSERT_EQ(request.sequences_size(), 2);
    ASSERT_EQ(request.sequences(0).token_ids_size(), 6);
    request.set_pooling(pooling);
    const int64_t passes_before = server->batcher().stats().forward_passes;
    v1::RankHeadsResponse response;
    grpc::Status status = CallRankHeads(*stub, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model(), server->model_info().name);
    ASSERT_EQ(response.heads_size(), 8);
    ASSERT_EQ(response.layers_size(), 2);
    EXPECT_EQ(response.heads(0).layer(), kOneLayer);
    EXPECT_EQ(response.heads(0).head(), kOneHead);
    EXPECT_GT(response.heads(0).importance(), 1e-3);
    for (int k = 1; k < 8; ++k) {
      EXPECT_NEAR(response.heads(k).importance(), 0.0, 1e-6) << k;
      EXPECT_GE(response.heads(k - 1).importance(),
                response.heads(k).importance());
    }
    EXPECT_EQ(response.layers(0).layer(), kOneLayer);
    EXPECT_EQ(response.layers(0).head(), -1);
    EXPECT_NEAR(response.layers(0).importance(), response.heads(0).importance(),
                1e-6);
    // 2 sequences × (1 + 8 + 2) runs, 14 tokens; passes of ≤ 32 tokens.
    EXPECT_EQ(response.ablation_tokens(), 14 * 11);
    EXPECT_GE(response.forward_passes(), 5);
    EXPECT_GE(server->batcher().stats().forward_passes - passes_before,
              response.forward_passes());

    const PoolingMode mode = pooling == v1::POOLING_CLS ? PoolingMode::kCls
                             : pooling == v1::POOLING_POOLER
                                 ? PoolingMode::kPooler
                                 : PoolingMode::kMean;
    auto want = RankHeads(**encoder, sequences, mode);
    ASSERT_TRUE(want.ok()) << want.status();
    for (int k = 0; k < 8; ++k) {
      EXPECT_EQ(response.heads(k).layer(), want->heads[k].layer);
      EXPECT_EQ(response.heads(k).head(), want->heads[k].head);
      EXPECT_NEAR(response.heads(k).importance(), want->heads[k].importance,
                  1e-6);
    }
  }
}

TEST_F(ServerHeadsTest, RankHeadsTakesTextAndRefusesTooMuchWork) {
  v1::RankHeadsRequest request;
  request.add_sequences()->set_text("the cat sat on the mat");
  v1::RankHeadsResponse response;
  grpc::Status status = CallRankHeads(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.heads_size(), kLayers * kHeads);
  EXPECT_EQ(response.layers_size(), kLayers);
  EXPECT_EQ(response.ablation_tokens(), 8 * 11);  // [CLS] 6 words [SEP]

  // 2 × 23 tokens × 11 runs = 506 > 300.
  request.Clear();
  AddSequence(Golden("len23"), &request);
  AddSequence(Golden("len23"), &request);
  status = CallRankHeads(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (const char* part :
       {"506 tokens of forward passes", "46 tokens in all", "11 times",
        "limit of 300", "--max_rank_heads_tokens", "fewer or shorter",
        "at most 27 tokens"}) {
    EXPECT_THAT(status.error_message(), HasSubstr(part));
  }

  request.Clear();
  AddSequence(Golden("len5"), &request);
  request.set_pooling(v1::POOLING_NONE);
  status = CallRankHeads(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("POOLING_NONE"));

  request.Clear();
  status = CallRankHeads(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("sequences is empty"));

  request.Clear();
  AddSequence(Golden("len5"), &request);
  request.mutable_sequences(0)->set_token_ids(1, kVocab);
  status = CallRankHeads(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("sequences[0].token_ids[1] = 99 is out of range"));

  request.set_model("bert-large");
  status = CallRankHeads(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ServerRankHeadsTest, DeadlineIsHonouredWhileAPassWaits) {
  std::unique_ptr<Server> server = StartServer(HeadsOptions());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  server->batcher().Pause();
  grpc::Status status;
  std::thread client([&] {
    v1::RankHeadsRequest request;
    request.add_sequences()->set_text("the cat");
    v1::RankHeadsResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(kQueuedDeadlineMs));
    status = stub->RankHeads(&context, request, &response);
  });
  const bool queued = WaitForQueued(server->batcher(), 1);
  client.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's deadline is the client's plus the transit time: wait until
  // the server sees it passed too before the batcher looks at the request.
  const bool droppable = WaitForDroppable(server->batcher(), 1);
  server->batcher().Resume();
  server->Shutdown(absl::Seconds(20));
  ASSERT_TRUE(queued);
  ASSERT_TRUE(droppable);
  const Batcher::Stats stats = server->batcher().stats();
  EXPECT_EQ(stats.forward_passes, 0);
  EXPECT_EQ(stats.expired + stats.cancelled, 1);
}

TEST(ServerRankHeadsTest, ShutdownAnswersARankingInFlight) {
  ServerOptions options = HeadsOptions();
  options.batcher.max_batch_tokens = 8;  // many passes
  std::unique_ptr<Server> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  auto stub = v1::Encoder::NewStub(NewChannel(port));
  server->batcher().Pause();
  grpc::Status status;
  v1::RankHeadsResponse response;
  std::thread client([&] {
    v1::RankHeadsRequest request;
    request.add_sequences()->set_text("the cat sat");
    status = CallRankHeads(*stub, request, &response);
  });
  const bool queued = WaitForQueued(server->batcher(), 1);
  std::thread stopper([&] { server->Shutdown(absl::Seconds(20)); });
  const bool refusing = WaitUntilRefusing(port);
  server->batcher().Resume();
  client.join();
  stopper.join();
  ASSERT_TRUE(queued);
  EXPECT_TRUE(refusing);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.heads_size(), kLayers * kHeads);
  // 5 tokens × 11 runs in passes of ≤ 8 tokens: one run per pass.
  EXPECT_EQ(response.forward_passes(), 11);
  EXPECT_EQ(server->batcher().stats().forward_passes, 11);
}

}  // namespace
}  // namespace attnserve
