// The constructed demo model (model/demo/constructed_model.cc), checked the
// way a user sees it: through the gRPC API of an in-process server. Each head
// must put at least 0.8 of its mean weight on its target (docs/demo-model.md
// defines the targets), on the README sentence and on sentences made up here;
// RankHeads must find the pronoun head more important than the broad head.
#include "model/demo/constructed_model.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/text/tokenizer.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

constexpr char kReadme[] =
    "The animal didn't cross the street because it was too tired";

using Links = std::vector<std::pair<int, int>>;  // (query row, target key)

// A sentence, its tokens, and where the third layer's heads must look; every
// row not listed must rest on [CLS].
struct Case {
  std::string name;
  std::string text;
  std::string pair;
  std::vector<std::string> tokens;
  Links determiner, subject, pronoun, nearest_noun;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  return {
      {"readme",
       kReadme,
       "",
       {"[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street",
        "because", "it", "was", "too", "tired", "[SEP]"},
       /*determiner=*/{{1, 2}, {7, 8}},
       /*subject=*/{{3, 2}, {6, 2}, {11, 10}},
       /*pronoun=*/{{10, 2}},
       /*nearest_noun=*/{{10, 8}}},
      {"woman_book",
       "The woman read the book because she was happy",
       "",
       {"[CLS]", "the", "woman", "read", "the", "book", "because", "she", "was",
        "happy", "[SEP]"},
       {{1, 2}, {4, 5}},
       {{3, 2}, {8, 7}},
       {{7, 2}},
       {{7, 5}}},
      // "it" skips the nearer river (not animate) and the farther boy.
      {"boy_dog_river",
       "A boy found a dog near the river and it was happy",
       "",
       {"[CLS]", "a", "boy", "found", "a", "dog", "near", "the", "river", "and",
        "it", "was", "happy", "[SEP]"},
       {{1, 2}, {4, 5}, {7, 8}},
       {{3, 2}, {11, 10}},
       {{10, 5}},
       {{10, 8}}},
      // A pair: two [SEP]s, and "it" in the second segment finds the cat.
      {"pair_cat_mat",
       "The cat sat on the mat",
       "It was happy",
       {"[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]", "it", "was",
        "happy", "[SEP]"},
       {{1, 2}, {5, 6}},
       {{3, 2}, {9, 8}},
       {{8, 2}},
       {{8, 6}}},
  };
}

// The maps of one sequence: (layers, heads, T, T).
struct Maps {
  int64_t t = 0;
  std::vector<float> p;
  float at(int layer, int head, int i, int j) const {
    return p[((int64_t(layer) * 4 + head) * t + i) * t + j];
  }
};

class ConstructedModelTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("constructed"));
    DemoModelOptions options;
    options.kind = DemoModelKind::kConstructed;
    ASSERT_TRUE(WriteDemoModel(*dir_, options).ok());
    server_ = StartServer(TestOptions(), *dir_).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Encoder::NewStub(NewChannel(server_->port()));
  }

  // Encodes `c` with every map and the statistics.
  v1::SequenceResult Encode(const Case& c) {
    v1::EncodeRequest request;
    v1::Sequence* seq = request.add_sequences();
    seq->set_text(c.text);
    seq->set_text_pair(c.pair);
    request.mutable_attention()->set_stats(true);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (response.results_size() != 1) return {};
    return response.results(0);
  }

  static inline Server* server_ = nullptr;
  static inline std::string* dir_ = nullptr;
  std::unique_ptr<v1::Encoder::Stub> stub_;
};

const v1::HeadStats& StatsOf(const v1::SequenceResult& r, const int (&lh)[2]) {
  for (const v1::HeadStats& s : r.head_stats()) {
    if (s.layer() == lh[0] && s.head() == lh[1]) return s;
  }
  static const v1::HeadStats* none = new v1::HeadStats();
  ADD_FAILURE() << "no head_stats for layer " << lh[0] << " head " << lh[1];
  return *none;
}

// Mean over rows of the weight on each row's target set.
double MeanOnTargets(const Maps& m, const int (&lh)[2],
                     const std::vector<std::vector<int>>& targets) {
  double sum = 0;
  for (int64_t i = 0; i < m.t; ++i) {
    for (int j : targets[i]) sum += m.at(lh[0], lh[1], i, j);
  }
  return sum / m.t;
}

// The rows of `links` on their targets, every other row on [CLS].
std::vector<std::vector<int>> LinkTargets(int64_t t, const Links& links) {
  std::vector<std::vector<int>> targets(t, std::vector<int>{0});
  for (const auto& [from, to] : links) targets[from] = {to};
  return targets;
}

TEST_P(ConstructedModelTest, TokenizesEveryWordAsOneToken) {
  const Case& c = GetParam();
  const v1::SequenceResult r = Encode(c);
  EXPECT_EQ(std::vector<std::string>(r.tokens().begin(), r.tokens().end()),
            c.tokens);
}

TEST_P(ConstructedModelTest, PositionalHeadsDoTheirJobs) {
  const Case& c = GetParam();
  const v1::SequenceResult r = Encode(c);
  ASSERT_EQ(r.tokens_size(), int(c.tokens.size()));
  EXPECT_GE(StatsOf(r, DemoHeads::kPrevious).prev_weight(), 0.8);
  EXPECT_GE(StatsOf(r, DemoHeads::kNext).next_weight(), 0.8);
  EXPECT_GE(StatsOf(r, DemoHeads::kSelf).self_weight(), 0.8);
  EXPECT_GE(StatsOf(r, DemoHeads::kCls).cls_weight(), 0.8);
  EXPECT_GE(StatsOf(r, DemoHeads::kSep).sep_weight(), 0.8);
  // Broad: close to uniform, the largest entropy a row of T can have.
  const double max_entropy = std::log(double(c.tokens.size()));
  EXPECT_GE(StatsOf(r, DemoHeads::kBroad).entropy(), 0.95 * max_entropy);

  Maps m{r.tokens_size(), DecodeFloat32(r.attention())};
  ASSERT_EQ(m.p.size(), size_t(3 * 4 * m.t * m.t));
  std::vector<std::vector<int>> window(m.t), same(m.t);
  for (int i = 0; i < m.t; ++i) {
    for (int j = std::max(0, i - 2); j <= std::min<int>(m.t - 1, i + 2); ++j) {
      window[i].push_back(j);
    }
    // Other occurrences of the token; [CLS] when it has none.
    for (int j = 0; j < m.t; ++j) {
      const bool word = c.tokens[i] != "[CLS]" && c.tokens[i] != "[SEP]";
      if (j != i && word && c.tokens[j] == c.tokens[i]) same[i].push_back(j);
    }
    if (same[i].empty()) same[i] = {0};
  }
  EXPECT_GE(MeanOnTargets(m, DemoHeads::kLocal, window), 0.8);
  EXPECT_GE(MeanOnTargets(m, DemoHeads::kSameWord, same), 0.8);
}

TEST_P(ConstructedModelTest, WordHeadsFindTheirTargets) {
  const Case& c = GetParam();
  const v1::SequenceResult r = Encode(c);
  ASSERT_EQ(r.tokens_size(), int(c.tokens.size()));
  Maps m{r.tokens_size(), DecodeFloat32(r.attention())};
  const std::pair<const int(*)[2], const Links*> heads[] = {
      {&DemoHeads::kDeterminer, &c.determiner},
      {&DemoHeads::kSubject, &c.subject},
      {&DemoHeads::kPronoun, &c.pronoun},
      {&DemoHeads::kNearestNoun, &c.nearest_noun}};
  for (const auto& [lh, links] : heads) {
    SCOPED_TRACE(::testing::Message()
                 << "layer " << (*lh)[0] << " head " << (*lh)[1]);
    for (const auto& [from, to] : *links) {
      EXPECT_GE(m.at((*lh)[0], (*lh)[1], from, to), 0.8)
          << c.tokens[from] << " -> " << c.tokens[to];
    }
    EXPECT_GE(MeanOnTargets(m, *lh, LinkTargets(m.t, *links)), 0.8);
  }
}

TEST_P(ConstructedModelTest, RankHeadsPutsThePronounHeadAboveTheBroadHead) {
  const Case& c = GetParam();
  v1::RankHeadsRequest request;
  v1::Sequence* seq = request.add_sequences();
  seq->set_text(c.text);
  seq->set_text_pair(c.pair);
  v1::RankHeadsResponse response;
  grpc::Status status = CallRankHeads(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto rank = [&](const int(&lh)[2]) {
    for (int k = 0; k < response.heads_size(); ++k) {
      if (response.heads(k).layer() == lh[0] &&
          response.heads(k).head() == lh[1]) {
        return k;
      }
    }
    return response.heads_size();
  };
  EXPECT_LT(rank(DemoHeads::kPronoun), rank(DemoHeads::kBroad));
  // Heads that rest on [CLS]/[SEP] write nothing: importance 0 (but for
  // rounding in the cosine).
  EXPECT_LT(response.heads(rank(DemoHeads::kCls)).importance(), 1e-6);
  EXPECT_LT(response.heads(rank(DemoHeads::kSep)).importance(), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Sentences, ConstructedModelTest,
                         ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// Text a user might type tokenizes without [UNK].
TEST(ConstructedModelVocab, EnglishTextHasNoUnknownTokens) {
  absl::StatusOr<ConstructedModel> m = BuildConstructedModel();
  ASSERT_TRUE(m.ok()) << m.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromVocab(m->vocab, /*do_lower_case=*/true);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const char* text :
       {kReadme, "Hello, world! It’s 3:45 p.m. — “quoted” text…",
        "Zyzzyvas quixotically jumped over 12,345 café façades (naïve?)",
        "e-mail: someone@example.com; cost: €20 / £15 ± 2%",
        "The quick brown fox jumps over the lazy dog."}) {
    absl::StatusOr<Encoding> e = (*tokenizer)->Encode(text, "", 64, false);
    ASSERT_TRUE(e.ok()) << text << ": " << e.status();
    for (const std::string& token : e->tokens) {
      EXPECT_NE(token, "[UNK]") << text;
    }
  }
}

TEST(ConstructedModelVocab, JobsCoverEveryHeadOnce) {
  const std::vector<DemoHeadJob>& jobs = ConstructedHeadJobs();
  ASSERT_EQ(jobs.size(), 12u);
  for (size_t k = 0; k < jobs.size(); ++k) {
    EXPECT_EQ(jobs[k].layer, int(k) / 4);
    EXPECT_EQ(jobs[k].head, int(k) % 4);
  }
}

}  // namespace
}  // namespace attnserve::testing
