// Text through gRPC, in process: text in (tokenized on the server) →
// tokens, ids, embedding and labelled attention out; Tokenize; every pooling
// mode against references computed here from the returned hidden states and
// the PyTorch goldens; the bad text cases; a model directory without a
// vocab; a sentence-transformers directory whose default pooling is mean.
//
// The tokenizer itself is tested against independent vectors in
// tokenizer_test.cc; here the server must give exactly what
// Tokenizer::Encode gives, and run exactly what those ids would run.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "model/text/tokenizer.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using namespace ::attnserve::testing;  // NOLINT: the server test helpers
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

std::vector<int32_t> Ints(const google::protobuf::RepeatedField<int32_t>& r) {
  return {r.begin(), r.end()};
}
std::vector<std::string> Strings(
    const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

double Norm(const std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += double{x} * x;
  return std::sqrt(n);
}

// The shared tiny_bert server, and tiny_bert's tokenizer for the expected
// encodings.
class ServerTextTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    SharedServerTest::SetUpTestSuite();
    auto tokenizer = Tokenizer::Load(kModelDir);
    tokenizer_ = tokenizer.ok() ? tokenizer->release() : nullptr;
  }
  static void TearDownTestSuite() {
    SharedServerTest::TearDownTestSuite();
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SharedServerTest::SetUp());
    ASSERT_NE(tokenizer_, nullptr);
    ASSERT_NE(server_->tokenizer(), nullptr);
  }
  Encoding Expected(const std::string& text, const std::string& pair = "",
                    bool truncate = false) {
    auto e = tokenizer_->Encode(text, pair, kMaxPositions, truncate);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : Encoding{};
  }

  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(ServerTextTest, TextInGivesTokensIdsEmbeddingAndLabelledAttention) {
  const std::string text = "The cat sat on the mat, didn't it?";
  const std::string a = "hello world", b = "the dogs ran";
  const Encoding single = Expected(text);
  const Encoding pair = Expected(a, b);
  ASSERT_GT(single.ids.size(), 10u);

  v1::EncodeRequest by_text;
  by_text.add_sequences()->set_text(text);
  v1::Sequence* p = by_text.add_sequences();
  p->set_text(a);
  p->set_text_pair(b);
  by_text.set_return_hidden_states(true);
  by_text.mutable_attention();
  v1::EncodeResponse text_response;
  grpc::Status status = CallEncode(*stub_, by_text, &text_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(text_response.results_size(), 2);

  // The same ids sent as token_ids (with the pair's token types).
  v1::EncodeRequest by_ids = by_text;
  by_ids.clear_sequences();
  for (const Encoding* e : {&single, &pair}) {
    v1::Sequence* s = by_ids.add_sequences();
    s->mutable_token_ids()->Add(e->ids.begin(), e->ids.end());
    s->mutable_token_type_ids()->Add(e->type_ids.begin(), e->type_ids.end());
  }
  v1::EncodeResponse ids_response;
  status = CallEncode(*stub_, by_ids, &ids_response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  int i = 0;
  for (const Encoding* e : {&single, &pair}) {
    SCOPED_TRACE(i);
    const v1::SequenceResult& r = text_response.results(i);
    const v1::SequenceResult& ref = ids_response.results(i++);
    const int64_t t = e->ids.size();
    EXPECT_EQ(Ints(r.token_ids()), e->ids);
    EXPECT_EQ(Strings(r.tokens()), e->tokens);
    // Ids input is labelled from the vocab: the same tokens.
    EXPECT_EQ(Strings(ref.tokens()), e->tokens);
    // Labelled attention: one token per query row and per key column.
    EXPECT_EQ(Shape(r.attention()),
              (std::vector<int64_t>{kLayers, kHeads, t, t}));
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.attention()),
                         DecodeFloat32(ref.attention())),
              1e-6);
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.hidden_states()),
                         DecodeFloat32(ref.hidden_states())),
              1e-6);
    EXPECT_EQ(Shape(r.embedding()), (std::vector<int64_t>{kHidden}));
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.embedding()),
                         DecodeFloat32(ref.embedding())),
              1e-6);
  }
  EXPECT_EQ(pair.type_ids.back(), 1);
}

TEST_F(ServerTextTest, TokenizeGivesIdsTokensTypesAndFlatOffsets) {
  v1::TokenizeRequest request;
  request.add_sequences()->set_text("Hello, WORLD!  cats");
  v1::Sequence* p = request.add_sequences();
  p->set_text("the dog");
  p->set_text_pair("sat\ton the mat");
  v1::Sequence* ids = request.add_sequences();
  for (int id : {2, 15, 3}) ids->add_token_ids(id);
  v1::TokenizeResponse response;
  grpc::Status status = CallTokenize(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 3);

  const Encoding want[2] = {Expected("Hello, WORLD!  cats"),
                            Expected("the dog", "sat\ton the mat")};
  for (int s = 0; s < 2; ++s) {
    SCOPED_TRACE(s);
    const v1::TokenizedSequence& r = response.results(s);
    EXPECT_EQ(Ints(r.token_ids()), want[s].ids);
    EXPECT_EQ(Strings(r.tokens()), want[s].tokens);
    EXPECT_EQ(Ints(r.token_type_ids()), want[s].type_ids);
    std::vector<int32_t> flat;
    for (const auto& [start, end] : want[s].offsets) {
      flat.push_back(start);
      flat.push_back(end);
    }
    EXPECT_EQ(Ints(r.offsets()), flat);
  }
  // Spot checks of the flat layout: [CLS] 0,0; "hello" is bytes [0, 5);
  // "cats" → "cat" "##s" at [15, 18) and [18, 19).
  const v1::TokenizedSequence& first = response.results(0);
  ASSERT_GE(first.offsets_size(), 4);
  EXPECT_EQ(first.offsets(0), 0);
  EXPECT_EQ(first.offsets(1), 0);
  EXPECT_EQ(first.tokens(1), "hello");
  EXPECT_EQ(first.offsets(2), 0);
  EXPECT_EQ(first.offsets(3), 5);
  const int n = first.tokens_size();
  EXPECT_EQ(first.offsets_size(), 2 * n);
  EXPECT_EQ(first.tokens(n - 3), "cat");
  EXPECT_EQ(first.tokens(n - 2), "##s");
  EXPECT_EQ(first.offsets(2 * (n - 3)), 15);
  EXPECT_EQ(first.offsets(2 * (n - 2) + 1), 19);
  // The pair's second segment: offsets into text_pair, type 1.
  const v1::TokenizedSequence& second = response.results(1);
  EXPECT_EQ(second.token_type_ids(second.token_type_ids_size() - 1), 1);

  // token_ids in: tokens from the vocab, types 0, no offsets.
  const v1::TokenizedSequence& third = response.results(2);
  EXPECT_EQ(Ints(third.token_ids()), (std::vector<int32_t>{2, 15, 3}));
  EXPECT_EQ(
      Strings(third.tokens()),
      (std::vector<std::string>{"[CLS]", tokenizer_->IdToToken(15), "[SEP]"}));
  EXPECT_EQ(Ints(third.token_type_ids()), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(third.offsets_size(), 0);

  // Truncation: longest first, to max_position_embeddings.
  std::string long_text;
  for (int k = 0; k < 30; ++k) long_text += "red blue ";
  request.Clear();
  request.add_sequences()->set_text(long_text);
  status = CallTokenize(*stub_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("sequences[0].text"));
  request.set_truncate(true);
  response.Clear();
  status = CallTokenize(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results(0).token_ids_size(), kMaxPositions);
  EXPECT_EQ(Ints(response.results(0).token_ids()),
            Expected(long_text, "", true).ids);
}

TEST_F(ServerTextTest, PoolingModesMatchReferencesFromHiddenStates) {
  // Several lengths in one request: padding (if any) must not leak into the
  // mean.
  const std::vector<std::string> names = {"len1", "len5", "len23", "pair9"};
  v1::EncodeRequest request;
  for (const std::string& name : names) {
    AddSequence(FindGolden(*golden_, name), &request);
  }
  request.set_return_hidden_states(true);
  for (v1::Pooling pooling : {v1::POOLING_UNSPECIFIED, v1::POOLING_CLS,
                              v1::POOLING_MEAN, v1::POOLING_POOLER}) {
    for (bool normalize : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "pooling " << pooling << " normalize " << normalize);
      request.set_pooling(pooling);
      request.set_normalize(normalize);
      v1::EncodeResponse response;
      grpc::Status status = CallEncode(*stub_, request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ASSERT_EQ(response.results_size(), static_cast<int>(names.size()));
      for (size_t s = 0; s < names.size(); ++s) {
        const GoldenSequence& g = FindGolden(*golden_, names[s]);
        const v1::SequenceResult& r = response.results(s);
        const std::vector<float> hidden = DecodeFloat32(r.hidden_states());
        const int64_t t = g.length();
        std::vector<float> want(kHidden, 0.f);
        switch (pooling) {
          case v1::POOLING_UNSPECIFIED:  // tiny_bert's default: CLS
          case v1::POOLING_CLS:
            want.assign(hidden.begin(), hidden.begin() + kHidden);
            break;
          case v1::POOLING_MEAN:
            for (int c = 0; c < kHidden; ++c) {
              double sum = 0;
              for (int64_t row = 0; row < t; ++row) {
                sum += hidden[row * kHidden + c];
              }
              want[c] = static_cast<float>(sum / t);
            }
            // And PyTorch's mean over the attention mask.
            EXPECT_LE(MaxAbsDiff(want, g.mean_pooled), kHiddenTolerance);
            break;
          default:  // POOLER: tanh(W·h_cls + b), PyTorch's pooler_output
            want = g.pooler;
            break;
        }
        if (normalize) {
          const double n = Norm(want);
          for (float& v : want) v = static_cast<float>(v / n);
        }
        const std::vector<float> got = DecodeFloat32(r.embedding());
        EXPECT_EQ(Shape(r.embedding()), (std::vector<int64_t>{kHidden}));
        EXPECT_LE(MaxAbsDiff(got, want), kHiddenTolerance) << names[s];
        if (normalize) {
          EXPECT_NEAR(Norm(got), 1.0, 1e-5);
        }
      }
    }
  }
}

TEST_F(ServerTextTest, BadTextIsRefusedWithFieldAndReason) {
  struct Case {
    const char* name;
    std::function<void(v1::Sequence*)> edit;
    grpc::StatusCode code;
    std::vector<std::string> parts;
  };
  std::string long_text;
  for (int k = 0; k < 30; ++k) long_text += "red blue ";
  const std::vector<Case> cases = {
      {"invalid UTF-8",
       [](v1::Sequence* s) {
         s->set_text(
             std::string("ab\xff"
                         "cd"));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1].text is not valid UTF-8", "byte offset 2"}},
      {"truncated UTF-8 in the pair",
       [](v1::Sequence* s) {
         s->set_text("hello");
         s->set_text_pair(std::string("the \xe4\xb8"));
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1].text_pair is not valid UTF-8", "byte offset 4"}},
      {"too long without truncate",
       [&](v1::Sequence* s) { s->set_text(long_text); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1].text", "62 tokens", "the limit is 40",
        "max_position_embeddings", "truncate = true"}},
      {"text and token ids",
       [](v1::Sequence* s) {
         s->set_text("hello");
         s->add_token_ids(2);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1] has both token_ids", "text"}},
      {"text_pair without text",
       [](v1::Sequence* s) { s->set_text_pair("hello"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1].text_pair is set but text is empty"}},
      {"token types with text",
       [](v1::Sequence* s) {
         s->set_text("hello");
         s->add_token_type_ids(0);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"sequences[1].token_type_ids is set with text"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (int rpc = 0; rpc < 3; ++rpc) {  // Encode, Tokenize, RankHeads
      SCOPED_TRACE(rpc);
      v1::Sequence good, bad;
      good.set_text("hello world");
      c.edit(&bad);
      grpc::Status status;
      if (rpc == 0) {
        v1::EncodeRequest request;
        *request.add_sequences() = good;
        *request.add_sequences() = bad;
        v1::EncodeResponse response;
        status = CallEncode(*stub_, request, &response);
      } else if (rpc == 1) {
        v1::TokenizeRequest request;
        *request.add_sequences() = good;
        *request.add_sequences() = bad;
        v1::TokenizeResponse response;
        status = CallTokenize(*stub_, request, &response);
      } else {
        v1::RankHeadsRequest request;
        *request.add_sequences() = good;
        *request.add_sequences() = bad;
        v1::RankHeadsResponse response;
        status = CallRankHeads(*stub_, request, &response);
      }
      EXPECT_EQ(status.error_code(), c.code) << status.error_message();
      for (const std::string& part : c.parts) {
        EXPECT_THAT(status.error_message(), HasSubstr(part));
      }
    }
  }

  // With truncate the long text is accepted and cut to 40 tokens.
  v1::EncodeRequest request;
  request.add_sequences()->set_text(long_text);
  request.set_truncate(true);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results(0).token_ids_size(), kMaxPositions);
  EXPECT_EQ(response.results(0).tokens(kMaxPositions - 1), "[SEP]");
}

TEST_F(ServerTextTest, ModelInfoSaysTokenizerAndDefaultPooling) {
  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub_, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_TRUE(info.has_tokenizer());
  EXPECT_EQ(info.default_pooling(), v1::POOLING_CLS);
}

TEST(ServerNoVocabTest, TextIsFailedPreconditionAndIdsStillWork) {
  const std::string dir = CopyTinyBert("tiny_bert_no_vocab", false);
  std::unique_ptr<Server> server = StartServer(TestOptions(), dir);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->tokenizer(), nullptr);
  EXPECT_EQ(server->tokenizer_status().code(), absl::StatusCode::kNotFound);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_FALSE(info.has_tokenizer());

  v1::EncodeRequest request;
  request.add_sequences()->set_text("hello world");
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("sequences[0].text"));
  EXPECT_THAT(status.error_message(),
              HasSubstr("has no tokenizer files"));
  EXPECT_THAT(status.error_message(), HasSubstr("send token_ids"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(dir)));  // no paths

  v1::TokenizeRequest tokenize;
  for (int id : {2, 5, 3}) tokenize.add_sequences()->add_token_ids(id);
  v1::TokenizeResponse tokens;
  status = CallTokenize(*stub, tokenize, &tokens);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("Tokenize"));

  // Token ids are served: ids back, no tokens.
  request.Clear();
  v1::Sequence* s = request.add_sequences();
  for (int id : {2, 60, 61, 3}) s->add_token_ids(id);
  status = CallEncode(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Ints(response.results(0).token_ids()),
            (std::vector<int32_t>{2, 60, 61, 3}));
  EXPECT_EQ(response.results(0).tokens_size(), 0);
  EXPECT_TRUE(response.results(0).has_embedding());
}

TEST(ServerDefaultPoolingTest, SentenceTransformersMeanIsTheDefault) {
  const std::string dir = CopyTinyBert("tiny_bert_st", true);
  std::ofstream(dir + "/modules.json")
      << R"([{"idx": 0, "name": "0", "path": "", "type": )"
         R"("sentence_transformers.models.Transformer"},)"
         R"({"idx": 1, "name": "1", "path": "1_Pooling", "type": )"
         R"("sentence_transformers.models.Pooling"}])";
  fs::create_directory(dir + "/1_Pooling");
  std::ofstream(dir + "/1_Pooling/config.json")
      << R"({"word_embedding_dimension": 32, "pooling_mode_cls_token": false,)"
         R"( "pooling_mode_mean_tokens": true})";
  std::unique_ptr<Server> server = StartServer(TestOptions(), dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.default_pooling(), v1::POOLING_MEAN);

  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  const GoldenSequence& g = FindGolden(golden, "len12");
  v1::EncodeRequest request;
  AddSequence(g, &request);  // pooling UNSPECIFIED
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_LE(
      MaxAbsDiff(DecodeFloat32(response.results(0).embedding()), g.mean_pooled),
      kHiddenTolerance);
}

TEST(ServerNoPoolerTest, PoolerPoolingIsRefusedSayingSo) {
  const std::string dir = MakeTempDir("demo_no_pooler");
  DemoModelOptions options;
  options.hidden_size = 16;
  options.num_layers = 1;
  options.num_heads = 2;
  options.intermediate_size = 32;
  options.max_position_embeddings = 16;
  options.with_pooler = false;
  ASSERT_TRUE(WriteDemoModel(dir, options).ok());
  std::unique_ptr<Server> server = StartServer(TestOptions(), dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  v1::EncodeRequest request;
  request.add_sequences()->set_text("the cat");
  request.set_pooling(v1::POOLING_POOLER);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("POOLING_POOLER"));
  EXPECT_THAT(status.error_message(), HasSubstr("no pooler weights"));

  v1::RankHeadsRequest rank;
  rank.add_sequences()->set_text("the cat");
  rank.set_pooling(v1::POOLING_POOLER);
  v1::RankHeadsResponse ranking;
  status = CallRankHeads(*stub, rank, &ranking);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("no pooler weights"));

  request.set_pooling(v1::POOLING_MEAN);
  status = CallEncode(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Shape(response.results(0).embedding()), (std::vector<int64_t>{16}));
}

}  // namespace
}  // namespace attnserve
