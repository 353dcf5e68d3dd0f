// attnctl (client/): the flag parser, the text formatting helpers on
// synthetic responses, and every command end to end against an in-process
// server serving tests/data/tiny_bert (2 layers, 4 heads, a 99-word vocab).
// The page written by `attention --html` is also opened in headless
// Chromium (tests/chromium.h; ATTNSERVE_SKIP_BROWSER=1 skips that test).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/attention_html.h"
#include "client/cli.h"
#include "client/commands.h"
#include "client/tables.h"
#include "client/tensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/encoder/encoder.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/chromium.h"

namespace attnserve::client {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const char kModelDir[] = ATTNSERVE_TEST_DATA "/tiny_bert";

absl::StatusOr<Flags> Parse(std::vector<std::string> args) {
  return ParseFlags(args);
}

v1::Tensor FloatTensor(std::vector<int64_t> shape,
                       const std::vector<float>& values) {
  v1::Tensor t;
  t.set_dtype(v1::FLOAT32);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(std::string(reinterpret_cast<const char*>(values.data()),
                         values.size() * sizeof(float)));
  return t;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// ---- flags ----------------------------------------------------------------

TEST(ParseFlagsTest, TextIsPositional) {
  absl::StatusOr<Flags> f =
      Parse({"encode", "it was tired", "--pair", "so it slept", "--layers=5",
             "--query", "it", "--target", "host:1", "--timeout=2.5s"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->command, "encode");
  EXPECT_THAT(f->texts, ElementsAre("it was tired"));
  EXPECT_EQ(f->pair, "so it slept");
  EXPECT_THAT(f->layers, ElementsAre(5));
  EXPECT_THAT(f->query_words, ElementsAre("it"));
  EXPECT_TRUE(f->attention);  // --layers and --query imply it
  EXPECT_EQ(f->channel.target, "host:1");
  EXPECT_DOUBLE_EQ(f->timeout_seconds, 2.5);

  std::vector<v1::Sequence> seqs = Sequences(*f);
  ASSERT_EQ(seqs.size(), 1u);
  EXPECT_EQ(seqs[0].text(), "it was tired");
  EXPECT_EQ(seqs[0].text_pair(), "so it slept");
}

TEST(ParseFlagsTest, DoubleDashEndsFlags) {
  absl::StatusOr<Flags> f = Parse({"tokenize", "--", "--not-a-flag", "x"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->texts, ElementsAre("--not-a-flag", "x"));
}

TEST(ParseFlagsTest, MaskAndPoolingAndIds) {
  absl::StatusOr<Flags> f =
      Parse({"similarity", "--ids", "2,15,3", "--ids=2,16,3", "--mask",
             "1:2,0:*", "--mask=1:0", "--pooling", "mean"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->ids.size(), 2u);
  EXPECT_THAT(f->mask,
              ElementsAre(std::pair(1, 2), std::pair(0, -1), std::pair(1, 0)));
  EXPECT_EQ(f->pooling, v1::POOLING_MEAN);
}

TEST(ParseFlagsTest, RefusesWhatMakesNoSense) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "missing command"},
      {{"frobnicate"}, "unknown command"},
      {{"encode"}, "needs a TEXT or --ids"},
      {{"encode", "a", "--ids", "1,2"}, "not both"},
      {{"encode", "a", "b", "--pair", "c"}, "exactly one TEXT"},
      {{"tokenize", "a", "--html", "x.html"}, "--html does not apply"},
      {{"similarity", "a"}, "two or more"},
      {{"attention", "a", "b"}, "exactly one"},
      {{"encode", "a", "--query", "it", "--query-positions", "3"}, "not both"},
      {{"attention", "a", "--html", "x", "--query", "it"}, "every query row"},
      {{"encode", "a", "--mask", "1"}, "LAYER:HEAD"},
      {{"encode", "a", "--pooling", "max"}, "use cls, mean"},
      {{"encode", "a", "--layers", "x"}, "not an integer"},
      {{"encode", "a", "--timeout", "0"}, "positive number"},
      {{"encode", "a", "--layers"}, "needs a value"},
      {{"encode", "a", "--bogus"}, "unknown flag --bogus"},
      {{"encode", "bad \xff"}, "not valid UTF-8 at byte offset 4"},
      {{"info", "text"}, "does not apply to info"},
  };
  for (const auto& [args, message] : cases) {
    absl::StatusOr<Flags> f = Parse(args);
    EXPECT_FALSE(f.ok()) << absl::StrJoin(args, " ");
    EXPECT_THAT(f.status().message(), HasSubstr(message))
        << absl::StrJoin(args, " ");
  }
  absl::StatusOr<Flags> help = Parse({"encode", "--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help);
}

// ---- format helpers -------------------------------------------------------

TEST(FormatTest, DecodesFloat16AndFloat32AndChecksSizes) {
  v1::Tensor t;
  t.set_dtype(v1::FLOAT16);
  t.add_shape(3);
  const uint16_t halves[] = {0x3c00, 0xb800, 0x0001};  // 1, -0.5, 2^-24
  t.set_data(std::string(reinterpret_cast<const char*>(halves), 6));
  absl::StatusOr<Array> a = DecodeTensor(t, "x");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->values, ElementsAre(1.0f, -0.5f, std::ldexp(1.0f, -24)));
  t.add_shape(2);  // 6 values now, 6 bytes
  EXPECT_THAT(DecodeTensor(t, "x").status().message(),
              HasSubstr("6 bytes for 6 float16 values"));
  absl::StatusOr<Array> f = DecodeTensor(FloatTensor({2}, {0.25f, 3}), "y");
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(f->values, ElementsAre(0.25f, 3.0f));
}

TEST(FormatTest, LabelsRepeatedTokensWithTheirPosition) {
  EXPECT_THAT(TokenLabels({"[CLS]", "the", "cat", "the", "\n"}),
              ElementsAre("[CLS]", "the@1", "cat", "the@3", "\\n"));
  EXPECT_THAT(FindToken({"[CLS]", "It", "play", "##ing", "it"}, "it"),
              ElementsAre(1, 4));
  EXPECT_THAT(FindToken({"play", "##ing"}, "ing"), ElementsAre(1));
  EXPECT_THAT(FindToken({"play", "##ing"}, "##ing"), ElementsAre(1));
}

TEST(FormatTest, DisplayWidthCountsColumnsNotBytes) {
  EXPECT_EQ(DisplayWidth("cat"), 3);
  EXPECT_EQ(DisplayWidth("café"), 4);
  EXPECT_EQ(DisplayWidth("日本"), 4);
  EXPECT_EQ(Pad("日", 4), "日  ");
  EXPECT_EQ(Pad("ab", 4, /*right=*/true), "  ab");
}

// The sentence, with a head that sends "it" to "animal".
constexpr const char* kAnimal[] = {
    "[CLS]",  "the",     "animal", "didn", "'",   "t",     "cross", "the",
    "street", "because", "it",     "was",  "too", "tired", "[SEP]"};

Array AnimalAttention(int heads) {
  const int t = std::size(kAnimal);
  Array a;
  a.dtype = "float32";
  a.shape = {1, heads, t, t};
  a.values.assign(static_cast<size_t>(heads) * t * t, 0.0f);
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < t; ++i) {
      float* row = &a.values[(h * t + i) * t];
      for (int j = 0; j < t; ++j) row[j] = 0.38f / (t - 1);
      // Head 0: everything to "animal" (2); head 1: to the previous token.
      row[h == 0 ? 2 : (i > 0 ? i - 1 : 0)] = 0.62f;
    }
  }
  return a;
}

TEST(FormatTest, StrongestTargetsAreLabelledWithTokens) {
  const Array a = AnimalAttention(2);
  AttentionRows rows;
  rows.maps = &a;
  rows.layers = {5};
  rows.heads = {0, 7};
  for (int i = 0; i < static_cast<int>(std::size(kAnimal)); ++i) {
    rows.rows.push_back(i);
    rows.tokens.push_back(kAnimal[i]);
  }
  absl::StatusOr<std::string> all = FormatStrongestTargets(rows, {}, 1);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, HasSubstr("layer 5 head 0\n"));
  EXPECT_THAT(*all, HasSubstr("layer 5 head 7\n"));
  EXPECT_THAT(*all, ContainsRegex("10  it +->  animal +0\\.620"));
  EXPECT_THAT(*all, ContainsRegex("10  it +->  because +0\\.620"));
  // "the" occurs twice: labelled with positions.
  EXPECT_THAT(*all, ContainsRegex("8  street +->  the@7 +0\\.620"));
  EXPECT_EQ(Lines(*all).size(), 2 * (1 + std::size(kAnimal)));

  absl::StatusOr<std::string> it = FormatStrongestTargets(rows, {10}, 2);
  ASSERT_TRUE(it.ok()) << it.status();
  EXPECT_THAT(
      Lines(*it),
      ElementsAre("layer 5  head 0  it  ->  animal   0.620  [CLS]  0.027",
                  "layer 5  head 7  it  ->  because  0.620  [CLS]  0.027"));

  EXPECT_THAT(FormatStrongestTargets(rows, {99}, 1).status().message(),
              HasSubstr("query position 99 is not among"));
  rows.heads = {0};
  EXPECT_FALSE(FormatStrongestTargets(rows, {}, 1).ok());
}

TEST(FormatTest, QueryRowsFromTheServerKeepTheirPositions) {
  // (1 layer, 1 head, Q = 1 row for position 10, T keys)
  const Array full = AnimalAttention(1);
  const int t = std::size(kAnimal);
  Array a;
  a.shape = {1, 1, 1, t};
  a.values.assign(full.values.begin() + 10 * t, full.values.begin() + 11 * t);
  AttentionRows rows;
  rows.maps = &a;
  rows.layers = {2};
  rows.heads = {3};
  rows.rows = {10};
  rows.tokens.assign(std::begin(kAnimal), std::end(kAnimal));
  absl::StatusOr<std::string> text = FormatStrongestTargets(rows, {10}, 1);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "layer 2  head 3  it  ->  animal  0.620\n");
}

TEST(FormatTest, TokenTableShowsOffsetsIntoTextAndPair) {
  v1::TokenizedSequence seq;
  const char* tokens[] = {"[CLS]", "café", "!", "[SEP]", "日", "[SEP]"};
  const int ids[] = {2, 40, 7, 3, 1, 3};
  const int types[] = {0, 0, 0, 0, 1, 1};
  const int offsets[] = {0, 0, 0, 5, 5, 6, 0, 0, 0, 3, 0, 0};
  for (int i = 0; i < 6; ++i) {
    seq.add_tokens(tokens[i]);
    seq.add_token_ids(ids[i]);
    seq.add_token_type_ids(types[i]);
  }
  for (int o : offsets) seq.add_offsets(o);
  absl::StatusOr<std::string> table = FormatTokenTable(seq, "Café!", "日");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(Lines(*table), ElementsAre("  pos  token  id  type  bytes  text",
                                         "    0  [CLS]   2     0",
                                         "    1  café   40     0  0-5    Café",
                                         "    2  !       7     0  5-6    !",
                                         "    3  [SEP]   3     0",
                                         "    4  日      1     1  0-3    日",
                                         "    5  [SEP]   3     1"));
  seq.add_offsets(1);
  EXPECT_EQ(FormatTokenTable(seq, "", "").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(FormatTest, EmbeddingSummaryAndCosine) {
  Array e;
  e.dtype = "float32";
  e.shape = {2};
  e.values = {3, 4};
  EXPECT_EQ(FormatEmbedding(e),
            "embedding (2) float32  norm 5.0000  [3.0000 4.0000]");
  EXPECT_NEAR(Cosine({1, 0}, {1, 1}), std::sqrt(0.5), 1e-12);
  EXPECT_NEAR(Cosine({1, 2}, {-1, -2}), -1, 1e-12);
  EXPECT_TRUE(std::isnan(Cosine({0, 0}, {1, 1})));
  EXPECT_TRUE(std::isnan(Cosine({1}, {1, 1})));
}

v1::SequenceResult StatsResult() {
  v1::SequenceResult r;
  for (int l = 0; l < 2; ++l) {
    for (int h : {3, 1}) {  // request order, not sorted
      v1::HeadStats* s = r.add_head_stats();
      s->set_layer(l);
      s->set_head(h);
      s->set_entropy(0.5f + l + 0.25f * h);
      s->set_mean_distance(1.0f + h);
      s->set_prev_weight(h == 3 ? 0.81f : 0.1f);
      s->set_cls_weight(h == 1 ? 0.6f : 0.05f);
    }
    v1::LayerStats* ls = r.add_layer_stats();
    ls->set_layer(l);
    ls->set_diversity(0.2f + l);
    *ls->mutable_js_divergence() = FloatTensor({2, 2}, {0, 0.2f, 0.2f, 0});
  }
  return r;
}

TEST(FormatTest, HeadStatsGrids) {
  const std::string text = FormatHeadStats(StatsResult(), 9);
  EXPECT_THAT(text, HasSubstr("a uniform row over 9 tokens has 2.20"));
  EXPECT_THAT(text, HasSubstr("        h1    h3\n  L0  0.75  1.25\n"
                              "  L1  1.75  2.25\n"));
  EXPECT_THAT(text, HasSubstr("       h1   h3\n  L0  2.0  4.0\n"));
  EXPECT_THAT(text, HasSubstr("  L0  cls 0.60  prev 0.81\n"));
  EXPECT_THAT(text, ContainsRegex("L1 +1\\.200 +h3/h1 0\\.200"));
}

TEST(FormatTest, Ranking) {
  v1::RankHeadsResponse r;
  for (int i = 0; i < 5; ++i) {
    v1::HeadImportance* h = r.add_heads();
    h->set_layer(i % 2);
    h->set_head(i);
    h->set_importance(0.5f - 0.1f * i);
  }
  v1::HeadImportance* layer = r.add_layers();
  layer->set_layer(1);
  layer->set_head(-1);
  layer->set_importance(0.75f);
  r.set_forward_passes(2);
  r.set_ablation_tokens(1234);
  const std::string text = FormatRanking(r, 3);
  EXPECT_THAT(text, HasSubstr("most important heads (3 of 5)"));
  EXPECT_THAT(text, HasSubstr("1234 tokens in 2 forward passes"));
  EXPECT_THAT(text, ContainsRegex("1 +L0 H0 +0\\.500000"));
  EXPECT_THAT(text, ContainsRegex("3 +L0 H2 +0\\.300000"));
  EXPECT_THAT(text, Not(HasSubstr("L1 H3")));
  EXPECT_THAT(text, ContainsRegex("1 +L1 +0\\.750000"));
}

TEST(FormatTest, PageFromResultCarriesEverything) {
  v1::SequenceResult r = StatsResult();
  const int t = 3;
  std::vector<float> maps(2 * 2 * t * t, 1.0f / t);
  *r.mutable_attention() = FloatTensor({2, 2, t, t}, maps);
  *r.mutable_rollout() = FloatTensor({t, t}, std::vector<float>(t * t, 0.5f));
  for (const char* tok : {"[CLS]", "hi", "[SEP]"}) r.add_tokens(tok);
  absl::StatusOr<AttentionPage> page =
      PageFromResult(r, {0, 1}, {3, 1}, {{1, -1}});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->tokens, ElementsAre("[CLS]", "hi", "[SEP]"));
  EXPECT_THAT(page->heads, ElementsAre(3, 1));
  EXPECT_EQ(page->attention.size(), maps.size());
  EXPECT_EQ(page->head_stats.size(), 4u);
  EXPECT_EQ(page->layer_stats[1].js_divergence.size(), 4u);
  EXPECT_EQ(page->rollout.size(), 9u);
  EXPECT_TRUE(RenderAttentionHtml(*page).ok());
  // Labels that do not match the maps are a bad response.
  EXPECT_EQ(PageFromResult(r, {0}, {3, 1}, {}).status().code(),
            absl::StatusCode::kDataLoss);
  r.clear_attention();
  EXPECT_FALSE(PageFromResult(r, {0, 1}, {3, 1}, {}).ok());
}

// ---- end to end -----------------------------------------------------------

class AttnctlServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Encoder>> encoder = Encoder::Load(kModelDir);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    auto tokenizer = LoadTokenizerFor(kModelDir, (*encoder)->info());
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.shutdown_grace = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(options, *std::move(encoder), std::move(tokenizer));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // Runs `attnctl args...` against the server; the status and what it
  // printed.
  absl::Status Run(std::vector<std::string> args, std::string* out) {
    args.push_back(absl::StrCat("--target=127.0.0.1:", server_->port()));
    args.push_back("--timeout=30");
    absl::StatusOr<Flags> flags = ParseFlags(args);
    if (!flags.ok()) return flags.status();
    auto stub = v1::Encoder::NewStub(Connect(flags->channel));
    out->clear();
    return RunCommand(*flags, *stub, out);
  }
  std::string RunOk(std::vector<std::string> args) {
    std::string out;
    absl::Status status = Run(args, &out);
    EXPECT_TRUE(status.ok()) << absl::StrJoin(args, " ") << ": " << status;
    return out;
  }

  static Server* server_;
};

Server* AttnctlServerTest::server_ = nullptr;

TEST_F(AttnctlServerTest, Info) {
  const std::string out = RunOk({"info"});
  EXPECT_THAT(out, HasSubstr("model                    tiny_bert\n"));
  EXPECT_THAT(out, HasSubstr("heads                    4 (head size 8)\n"));
  EXPECT_THAT(out, HasSubstr("tokenizer                yes\n"));
  EXPECT_THAT(out, HasSubstr("family                   bert (model_type bert)\n"));
  EXPECT_THAT(out, HasSubstr("max tokens               40\n"));
  nlohmann::json j = nlohmann::json::parse(RunOk({"info", "--json"}));
  EXPECT_EQ(j["num_layers"], 2);
  EXPECT_EQ(j["has_tokenizer"], true);
}

TEST_F(AttnctlServerTest, Tokenize) {
  const std::string out =
      RunOk({"tokenize", "The cat sat.", "--pair", "a dog ran"});
  EXPECT_THAT(out, HasSubstr("sequence 0: \"The cat sat.\" + \"a dog ran\", "
                             "10 tokens\n"));
  EXPECT_THAT(out, ContainsRegex("1  the +15 +0  0-3 +The\n"));
  EXPECT_THAT(out, ContainsRegex("4  \\. +5 +0  11-12 +\\.\n"));
  EXPECT_THAT(out, ContainsRegex("7  dog +65 +1  2-5 +dog\n"));
  nlohmann::json j =
      nlohmann::json::parse(RunOk({"tokenize", "the cat", "--json"}));
  EXPECT_EQ(j["results"][0]["tokens"],
            nlohmann::json({"[CLS]", "the", "cat", "[SEP]"}));
  EXPECT_EQ(j["results"][0]["offsets"],
            nlohmann::json({0, 0, 0, 3, 4, 7, 0, 0}));
}

TEST_F(AttnctlServerTest, EncodePrintsEmbeddingAndLabelledAttention) {
  const std::string out =
      RunOk({"encode", "the cat sat on the mat because it was big", "--layers",
             "1", "--heads", "2,0", "--pooling", "mean", "--normalize"});
  EXPECT_THAT(out, HasSubstr("  12 tokens: [CLS] the cat sat on the mat "
                             "[UNK] it was big [SEP]\n"));
  EXPECT_THAT(out, ContainsRegex("embedding \\(32\\) float32  norm 1\\.0000"));
  EXPECT_THAT(out, HasSubstr("attention (1, 2, 12, 12) float32"));
  EXPECT_THAT(out, HasSubstr("  layer 1 head 2\n"));
  EXPECT_THAT(out, HasSubstr("  layer 1 head 0\n"));
  EXPECT_THAT(out, ContainsRegex("8  it +->  [^ ]+ +0\\.[0-9]{3}\n"));
  EXPECT_THAT(out, ContainsRegex("1  the@1 +->"));
}

TEST_F(AttnctlServerTest, EncodeQueryPrintsOneRowPerHead) {
  const std::string out = RunOk({"encode", "the cat sat because it was big",
                                 "--layers", "0", "--query", "it"});
  std::vector<std::string> rows;
  for (const std::string& line : Lines(out)) {
    if (line.find("  layer 0  head") == 0) rows.push_back(line);
  }
  ASSERT_EQ(rows.size(), 4u) << out;
  for (const std::string& row : rows) {
    // Three targets, strongest first.
    EXPECT_THAT(
        row, ContainsRegex("head [0-3]  it  ->  ([^ ]+ +0\\.[0-9]{3} *){3}$"));
  }
  // The same rows asked from the server (query_positions): same numbers.
  const std::string server_rows =
      RunOk({"encode", "the cat sat because it was big", "--layers", "0",
             "--query-positions", "5", "--top", "3"});
  for (const std::string& row : rows) EXPECT_THAT(server_rows, HasSubstr(row));
  EXPECT_THAT(server_rows, HasSubstr("attention (1, 4, 1, 9)"));

  std::string missing;
  absl::Status status = Run({"encode", "the cat", "--query", "dog"}, &missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("no such token in [CLS] the cat"));
}

TEST_F(AttnctlServerTest, EncodeIdsAndJson) {
  const std::string out =
      RunOk({"encode", "--ids", "2,15,64,3", "--attention", "--layers", "0",
             "--heads", "1", "--fp16", "--hidden"});
  EXPECT_THAT(out, HasSubstr("sequence 0: ids 2,15,64,3\n"));
  EXPECT_THAT(out, HasSubstr("4 tokens: [CLS] the cat [SEP]"));
  EXPECT_THAT(out, HasSubstr("hidden_states (4, 32) float32"));
  EXPECT_THAT(out, HasSubstr("attention (1, 1, 4, 4) float16"));

  nlohmann::json j = nlohmann::json::parse(
      RunOk({"encode", "the cat", "--layers", "1", "--json"}));
  const nlohmann::json& r = j["results"][0];
  EXPECT_EQ(r["tokens"], nlohmann::json({"[CLS]", "the", "cat", "[SEP]"}));
  EXPECT_EQ(r["attention"]["shape"], nlohmann::json({1, 4, 4, 4}));
  double row = 0;
  for (double v : r["attention"]["values"][0][2][1]) row += v;
  EXPECT_NEAR(row, 1.0, 1e-5);
  EXPECT_EQ(r["embedding"]["shape"], nlohmann::json({32}));
}

TEST_F(AttnctlServerTest, Similarity) {
  const std::string two =
      RunOk({"similarity", "the cat sat", "the cat sat", "--pooling", "mean"});
  EXPECT_THAT(two,
              HasSubstr("cosine 1.0000  (model tiny_bert, pooling: mean)"));
  const std::string three =
      RunOk({"similarity", "the cat sat", "a dog ran", "hello world"});
  EXPECT_THAT(three, HasSubstr("pooling: the model's default"));
  EXPECT_THAT(three, ContainsRegex("1  1\\.0000 +0\\.[0-9]{4} +0\\.[0-9]{4}   "
                                   "\"the cat sat\""));
  nlohmann::json j =
      nlohmann::json::parse(RunOk({"similarity", "a cat", "a dog", "--json"}));
  EXPECT_GT(j["cosine"].get<double>(), -1.0);
  EXPECT_LT(j["cosine"].get<double>(), 1.0);
  // A masked head changes the embeddings, so the cosine too.
  std::string masked =
      RunOk({"similarity", "a cat", "a dog", "--json", "--mask", "0:*"});
  EXPECT_NE(nlohmann::json::parse(masked)["cosine"], j["cosine"]);
}

TEST_F(AttnctlServerTest, Heads) {
  const std::string out =
      RunOk({"heads", "the cat sat on the mat", "--top", "3"});
  EXPECT_THAT(out, HasSubstr("a uniform row over 8 tokens has 2.08"));
  EXPECT_THAT(out, HasSubstr("        h0    h1    h2    h3\n  L0  "));
  EXPECT_THAT(out, ContainsRegex("\n  L1 +[0-9]\\.[0-9]{3} +h[0-3]/h[0-3]"));
  EXPECT_THAT(out, HasSubstr("most important heads (3 of 8)"));
  EXPECT_THAT(out, ContainsRegex("\n +3  L[01] H[0-3] +[0-9.]+\n"));
  EXPECT_THAT(out, HasSubstr("layers by importance"));

  const std::string some =
      RunOk({"heads", "the cat sat", "--heads", "3,1", "--no-rank"});
  EXPECT_THAT(some, HasSubstr("        h1    h3\n"));
  EXPECT_THAT(some, Not(HasSubstr("most important")));

  nlohmann::json j = nlohmann::json::parse(
      RunOk({"heads", "the cat", "--json", "--layers", "1"}));
  EXPECT_EQ(j["stats"]["results"][0]["head_stats"].size(), 4u);
  EXPECT_EQ(j["ranking"]["heads"].size(), 8u);
}

TEST_F(AttnctlServerTest, AttentionWritesAPageThatRenders) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           absl::StrCat("attnctl_test_", getpid()))
                              .string();
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/page.html";
  const std::string out = RunOk({"attention", "the cat sat on the <mat>",
                                 "--html", path, "--mask", "1:2"});
  EXPECT_THAT(out, HasSubstr("2 layers × 4 heads, 10 tokens, rollout"));
  std::ifstream file(path);
  const std::string html((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
  EXPECT_THAT(html, HasSubstr("<h1>the cat sat on the &lt;mat&gt;</h1>"));
  EXPECT_THAT(html, HasSubstr("masked: L1 H2"));
  if (!attnserve::testing::SkipBrowser()) {
    std::optional<attnserve::testing::Dom> dom =
        attnserve::testing::RenderInChromium(html);
    ASSERT_TRUE(dom.has_value());
    EXPECT_EQ(dom->errors, "");
    EXPECT_EQ(dom->rendered, "8");
    EXPECT_TRUE(dom->has_rollout);
  }
  // Without --html: the labelled strongest targets.
  EXPECT_THAT(RunOk({"attention", "the cat", "--layers", "0", "--heads", "0"}),
              HasSubstr("  layer 0 head 0\n"));
  std::filesystem::remove_all(dir);
}

// --retries 0 is one attempt: a service config without a retry policy (gRPC
// refuses maxAttempts 1, and every call would fail INVALID_ARGUMENT).
TEST_F(AttnctlServerTest, EveryRetriesValueConnects) {
  for (const char* retries : {"0", "1", "4"}) {
    EXPECT_THAT(RunOk({"info", "--retries", retries}),
                HasSubstr("model                    tiny_bert\n"))
        << "--retries " << retries;
  }
}

TEST_F(AttnctlServerTest, ServerErrorsKeepTheirCode) {
  std::string out;
  absl::Status s = Run({"encode", "the cat", "--layers", "7"}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("attention.layers[0] = 7"));
  std::string long_text;
  for (int i = 0; i < 50; ++i) long_text += "cat ";
  s = Run({"tokenize", long_text}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("40"));
  EXPECT_THAT(RunOk({"tokenize", long_text, "--truncate"}),
              HasSubstr("40 tokens"));
  s = Run({"heads", "the cat", "--pooling", "none"}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(AttnctlUnreachableTest, FailsWithUnavailableWithinTheDeadline) {
  absl::StatusOr<Flags> flags =
      ParseFlags({"info", "--target=127.0.0.1:1", "--timeout=5"});
  ASSERT_TRUE(flags.ok());
  auto stub = v1::Encoder::NewStub(Connect(flags->channel));
  std::string out;
  const absl::Status s = RunCommand(*flags, *stub, &out);
  EXPECT_THAT(s.code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                         absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace attnserve::client
