// server/validate, server/index_list and server/response_size, called
// directly: no gRPC, no model weights. The served model is a ModelInfo made
// here (2 layers × 4 heads, hidden 32, 40 positions, as tests/data/tiny_bert)
// and, for text, the tiny vocab. Each refusal is checked for its code and
// the words a client needs: the field, the value and the limit.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/encoder/head_ranking.h"
#include "model/text/tokenizer.h"
#include "server/index_list.h"
#include "server/response_size.h"
#include "server/validate.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    info_.name = "tiny";
    info_.config.vocab_size = 99;
    info_.config.hidden_size = 32;
    info_.config.num_layers = 2;
    info_.config.num_heads = 4;
    info_.config.intermediate_size = 64;
    info_.config.max_position_embeddings = 40;
    info_.config.type_vocab_size = 2;
    info_.has_pooler = false;
    info_.default_pooling = PoolingMode::kCls;
    auto tokenizer = Tokenizer::Load(DataPath("tiny_bert"));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    model_.info = &info_;
    model_.tokenizer = tokenizer_.get();
  }

  v1::EncodeRequest Ids(std::vector<int32_t> ids) {
    v1::EncodeRequest r;
    r.add_sequences()->mutable_token_ids()->Add(ids.begin(), ids.end());
    return r;
  }

  // The refusal of `request`, which must have `code`.
  std::string Refusal(const v1::EncodeRequest& request, absl::StatusCode code) {
    auto v = ValidateEncodeRequest(request, model_, limits_);
    EXPECT_FALSE(v.ok());
    if (v.ok()) return "";
    EXPECT_EQ(v.status().code(), code) << v.status();
    return std::string(v.status().message());
  }

  ModelInfo info_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ServedModel model_;
  RequestLimits limits_;
};

TEST_F(ValidateTest, IdsBecomeOneTaskPerSequence) {
  v1::EncodeRequest r = Ids({2, 10, 3});
  *r.add_sequences() = Ids({2, 11, 12, 3}).sequences(0);
  r.set_return_hidden_states(true);
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->tasks.size(), 2u);
  EXPECT_THAT(v->tasks[1].token_ids, ElementsAre(2, 11, 12, 3));
  EXPECT_TRUE(v->tasks[0].want_hidden);
  EXPECT_EQ(v->tasks[0].pooling, PoolingMode::kCls);  // the model's default
  EXPECT_TRUE(v->tasks[0].attention_layers.empty());
  EXPECT_TRUE(v->tasks[0].head_mask.empty());
  // Tokens come from the vocab, for labelling.
  ASSERT_EQ(v->inputs[0].tokens.size(), 3u);
  EXPECT_EQ(v->inputs[0].tokens[0], "[CLS]");
  // 7 tokens (5 bytes each + the token strings), hidden and embeddings.
  EXPECT_GE(v->response_bytes, 7 * 32 * 4 + 2 * 32 * 4);
}

TEST_F(ValidateTest, TextIsTokenized) {
  v1::EncodeRequest r;
  r.add_sequences()->set_text("the cat");
  r.mutable_sequences(0)->set_text_pair("a dog");
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  const InputSequence& in = v->inputs[0];
  EXPECT_EQ(in.tokens.front(), "[CLS]");
  EXPECT_EQ(in.tokens.back(), "[SEP]");
  EXPECT_EQ(in.type_ids.back(), 1);  // the pair's segment
}

// DistilBERT has no token types: a WordPiece pair is accepted, all type 0.
TEST_F(ValidateTest, PairTypesAreDroppedForModelsWithoutTokenTypes) {
  info_.config.has_token_types = false;
  info_.config.type_vocab_size = 1;
  v1::EncodeRequest r;
  r.add_sequences()->set_text("the cat");
  r.mutable_sequences(0)->set_text_pair("a dog");
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  for (int32_t type : v->inputs[0].type_ids) EXPECT_EQ(type, 0);
  EXPECT_EQ(v->inputs[0].tokens.back(), "[SEP]");
  // A BERT with one token type still refuses the pair: it would need type 1.
  info_.config.has_token_types = true;
  EXPECT_THAT(Refusal(r, absl::StatusCode::kInvalidArgument),
              HasSubstr("needs token type 1"));
}

// RoBERTa's limit: max_position_embeddings − pad_token_id − 1 tokens.
TEST_F(ValidateTest, TextIsLimitedToMaxTokens) {
  info_.config.position_offset = 35;  // max_tokens() = 40 − 35 = 5
  v1::EncodeRequest r;
  r.add_sequences()->set_text("the cat sat on the mat");
  EXPECT_THAT(Refusal(r, absl::StatusCode::kInvalidArgument),
              HasSubstr("the limit is 5"));
  r.set_truncate(true);
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->inputs[0].ids.size(), 5u);
}

TEST_F(ValidateTest, BadIdsNameTheFieldValueAndLimit) {
  EXPECT_THAT(Refusal(Ids({}), absl::StatusCode::kInvalidArgument),
              HasSubstr("sequences[0].token_ids is empty and text is unset"));
  EXPECT_EQ(Refusal(Ids({2, 99, 3}), absl::StatusCode::kInvalidArgument),
            "sequences[0].token_ids[1] = 99 is out of range [0, 99) "
            "(vocab_size)");
  EXPECT_EQ(Refusal(Ids(std::vector<int32_t>(41, 5)),
                    absl::StatusCode::kInvalidArgument),
            "sequences[0] has 41 tokens, more than the model's "
            "max_position_embeddings = 40");
  v1::EncodeRequest types = Ids({2, 5, 3});
  for (int32_t type : {0, 2, 0}) {
    types.mutable_sequences(0)->add_token_type_ids(type);
  }
  EXPECT_EQ(Refusal(types, absl::StatusCode::kInvalidArgument),
            "sequences[0].token_type_ids[1] = 2 is out of range [0, 2) "
            "(type_vocab_size)");
  types.mutable_sequences(0)->mutable_token_type_ids()->RemoveLast();
  EXPECT_THAT(Refusal(types, absl::StatusCode::kInvalidArgument),
              HasSubstr("token_type_ids has 2 entries but token_ids has 3"));
}

TEST_F(ValidateTest, RequestLimits) {
  limits_.max_sequences_per_request = 1;
  v1::EncodeRequest two = Ids({2, 3});
  *two.add_sequences() = Ids({2, 3}).sequences(0);
  EXPECT_THAT(
      Refusal(two, absl::StatusCode::kInvalidArgument),
      HasSubstr("sequences has 2 entries, more than this server's "
                "limit of 1 per request (--max_sequences_per_request)"));
  limits_ = {};
  limits_.max_tokens_per_request = 4;
  EXPECT_THAT(Refusal(Ids({2, 5, 6, 7, 3}), absl::StatusCode::kInvalidArgument),
              HasSubstr("5 tokens in total, more than this server's limit of "
                        "4 per request (--max_tokens_per_request)"));
  EXPECT_THAT(Refusal(v1::EncodeRequest(), absl::StatusCode::kInvalidArgument),
              HasSubstr("sequences is empty"));
  v1::EncodeRequest other = Ids({2, 3});
  other.set_model("bert-large");
  EXPECT_EQ(Refusal(other, absl::StatusCode::kNotFound),
            "model \"bert-large\" is not served here; served: \"tiny\"");
}

TEST_F(ValidateTest, AttentionSelection) {
  v1::EncodeRequest r = Ids({2, 5, 6, 3});
  r.mutable_attention()->add_layers(1);
  r.mutable_attention()->add_heads(3);
  r.mutable_attention()->add_heads(0);
  r.mutable_attention()->add_query_positions(2);
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(v->spec.attention_layers, ElementsAre(1));
  EXPECT_THAT(v->spec.attention_heads, ElementsAre(3, 0));
  EXPECT_THAT(v->spec.query_positions, ElementsAre(2));
  EXPECT_THAT(v->tasks[0].attention_layers, ElementsAre(1));

  // Rollout keeps every layer in the model's output; the response's layer
  // sits at its slot among them.
  r.mutable_attention()->set_rollout(true);
  v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(v->tasks[0].attention_layers, ElementsAre(0, 1));
  EXPECT_THAT(v->spec.layer_slots, ElementsAre(1));
}

TEST_F(ValidateTest, IndexListsAreInRangeWithoutRepeats) {
  v1::EncodeRequest r = Ids({2, 5, 3});
  r.mutable_attention()->add_layers(2);
  EXPECT_EQ(Refusal(r, absl::StatusCode::kInvalidArgument),
            "attention.layers[0] = 2 is out of range [0, 2) (the model has 2 "
            "layers)");
  r.mutable_attention()->clear_layers();
  r.mutable_attention()->add_heads(1);
  r.mutable_attention()->add_heads(1);
  EXPECT_EQ(Refusal(r, absl::StatusCode::kInvalidArgument),
            "attention.heads[1] = 1 repeats attention.heads[0]: list each "
            "index once");
  r.mutable_attention()->clear_heads();
  r.mutable_attention()->add_query_positions(3);
  EXPECT_THAT(Refusal(r, absl::StatusCode::kInvalidArgument),
              HasSubstr("attention.query_positions[0] = 3 is out of range "
                        "[0, 3) for sequences[0], which has 3 tokens"));
  r.mutable_attention()->clear_query_positions();
  r.mutable_attention()->add_query_positions(1);
  r.mutable_attention()->add_query_positions(1);
  EXPECT_EQ(Refusal(r, absl::StatusCode::kInvalidArgument),
            "attention.query_positions[1] = 1 repeats "
            "attention.query_positions[0]: list each position once");

  v1::EncodeRequest mask = Ids({2, 5, 3});
  v1::HeadRef* ref = mask.add_head_mask();
  ref->set_layer(1);
  ref->set_head(4);
  EXPECT_EQ(Refusal(mask, absl::StatusCode::kInvalidArgument),
            "head_mask[0].head = 4 is out of range [0, 4) (the model has 4 "
            "heads)");
  ref->set_head(2);
  *mask.add_head_mask() = *ref;
  EXPECT_EQ(Refusal(mask, absl::StatusCode::kInvalidArgument),
            "head_mask[1] = (layer 1, head 2) repeats head_mask[0]: list each "
            "head once");
  mask.mutable_head_mask()->RemoveLast();
  auto v = ValidateEncodeRequest(mask, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  std::vector<uint8_t> want(8, 0);
  want[1 * 4 + 2] = 1;
  EXPECT_EQ(v->tasks[0].head_mask, want);
}

TEST(IndexListTest, EmptySelectsAllAndOrderIsKept) {
  const std::vector<int32_t> none;
  auto all = SelectIndices(none, "heads", 3, "heads");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ElementsAre(0, 1, 2));
  const std::vector<int32_t> some = {2, 0};
  auto picked = SelectIndices(some, "heads", 3, "heads");
  ASSERT_TRUE(picked.ok());
  EXPECT_THAT(*picked, ElementsAre(2, 0));
  const std::vector<int32_t> negative = {-1};
  EXPECT_FALSE(SelectIndices(negative, "heads", 3, "heads").ok());
}

TEST_F(ValidateTest, Pooling) {
  v1::EncodeRequest r = Ids({2, 5, 3});
  r.set_pooling(v1::POOLING_POOLER);
  EXPECT_EQ(Refusal(r, absl::StatusCode::kInvalidArgument),
            "pooling = POOLING_POOLER but model \"tiny\" has no pooler "
            "weights: use POOLING_CLS or POOLING_MEAN");
  r.set_pooling(v1::POOLING_NONE);
  r.set_normalize(true);
  EXPECT_THAT(Refusal(r, absl::StatusCode::kInvalidArgument),
              HasSubstr("normalize = true needs an embedding"));
  r.set_pooling(static_cast<v1::Pooling>(42));
  EXPECT_EQ(Refusal(r, absl::StatusCode::kInvalidArgument),
            "pooling = 42 is not a Pooling value");
  r.set_pooling(v1::POOLING_MEAN);
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->tasks[0].pooling, PoolingMode::kMean);
  EXPECT_TRUE(v->tasks[0].normalize);
  r.set_pooling(v1::POOLING_NONE);
  r.set_normalize(false);
  v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->spec.embedding);
}

TEST_F(ValidateTest, TextWithoutVocabIsFailedPrecondition) {
  model_.tokenizer = nullptr;
  model_.no_tokenizer_reason = "the model directory has no vocab.txt";
  v1::EncodeRequest r;
  r.add_sequences()->set_text("hello");
  EXPECT_THAT(Refusal(r, absl::StatusCode::kFailedPrecondition),
              HasSubstr("sequences[0].text: model \"tiny\" cannot tokenize "
                        "text: the model directory has no vocab.txt"));
  v1::TokenizeRequest t;
  t.add_sequences()->set_text("hello");
  auto tv = ValidateTokenizeRequest(t, model_, limits_);
  EXPECT_EQ(tv.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ValidateTest, ResponseSizeIsCheckedBeforeRunning) {
  v1::EncodeRequest r = Ids(std::vector<int32_t>(40, 5));
  r.mutable_attention();  // all layers and heads: 2·4·40·40·4 bytes of maps
  auto v = ValidateEncodeRequest(r, model_, limits_);
  ASSERT_TRUE(v.ok()) << v.status();
  const int64_t maps = 2 * 4 * 40 * 40 * 4;
  EXPECT_GE(v->response_bytes, maps);
  // The limit is inclusive: exactly the size passes, one byte less fails.
  limits_.max_response_bytes = v->response_bytes;
  EXPECT_TRUE(ValidateEncodeRequest(r, model_, limits_).ok());
  limits_.max_response_bytes = v->response_bytes - 1;
  const std::string message = Refusal(r, absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(message, HasSubstr(absl::StrCat("attention maps ", maps)));
  EXPECT_THAT(message, HasSubstr("set attention.dtype = FLOAT16"));
  EXPECT_THAT(message, HasSubstr("--max_response_bytes"));
}

TEST(ResponseSizeTest, PartsAddUp) {
  ModelConfig config;
  config.hidden_size = 8;
  OutputSpec spec;
  spec.hidden_states = true;
  spec.embedding = true;
  spec.attention = true;
  spec.rollout = true;
  spec.attention_layers = {0, 1};
  spec.attention_heads = {0, 1, 2};
  spec.attention_dtype = v1::FLOAT16;
  InputSequence input;
  input.ids = {2, 5, 3};
  input.tokens = {"[CLS]", "a", "[SEP]"};
  const ResponseSize size = SizeOfResponse(spec, {input}, config);
  EXPECT_EQ(size.hidden, 3 * 8 * 4);
  EXPECT_EQ(size.embedding, 8 * 4);
  EXPECT_EQ(size.maps, 2 * 3 * 3 * 3 * 2);  // FLOAT16
  EXPECT_EQ(size.rollout, 3 * 3 * 4);
  EXPECT_EQ(size.tokens, 3 * 5 + (5 + 3) + (1 + 3) + (5 + 3));
  EXPECT_EQ(size.total(), size.hidden + size.embedding + size.maps +
                              size.rollout + size.tokens + size.stats);
}

TEST_F(ValidateTest, RankHeadsWorkIsBoundedAndNamed) {
  v1::RankHeadsRequest r;
  *r.add_sequences() = Ids({2, 5, 6, 3}).sequences(0);
  // 4 tokens × (1 + 2·4 + 2) runs = 44 tokens of work.
  EXPECT_EQ(RankHeadsRunsPerSequence(info_.config), 11);
  limits_.max_rank_heads_tokens = 44;
  auto job = ValidateRankHeadsRequest(r, model_, limits_, 1024);
  ASSERT_TRUE(job.ok()) << job.status();
  limits_.max_rank_heads_tokens = 43;
  job = ValidateRankHeadsRequest(r, model_, limits_, 1024);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(job.status().message(),
              HasSubstr("RankHeads would run 44 tokens of forward passes"));
  EXPECT_THAT(job.status().message(), HasSubstr("--max_rank_heads_tokens"));

  limits_ = {};
  r.set_pooling(v1::POOLING_NONE);
  job = ValidateRankHeadsRequest(r, model_, limits_, 1024);
  EXPECT_THAT(job.status().message(),
              HasSubstr("RankHeads compares pooled outputs"));
  r.set_pooling(v1::POOLING_POOLER);
  job = ValidateRankHeadsRequest(r, model_, limits_, 1024);
  EXPECT_EQ(job.status().message(),
            "pooling = POOLING_POOLER but model \"tiny\" has no pooler "
            "weights: use POOLING_MEAN (the default) or POOLING_CLS");
}

}  // namespace
}  // namespace attnserve
