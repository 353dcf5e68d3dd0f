// The server on a RoBERTa checkpoint with a byte-level BPE tokenizer.json:
// ModelInfo's family and limit, <s> A </s></s> B </s> with type 0 on a model
// with one token type, truncation to max_tokens (max_position_embeddings −
// pad_token_id − 1), and text results equal to the same ids sent as ids.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using namespace ::attnserve::testing;  // NOLINT: the server test helpers
using ::testing::ElementsAre;
using Json = nlohmann::json;

// tiny_roberta (vocab 61) with a hand-made byte-level BPE of 40 tokens.
std::string RobertaWithBpe() {
  namespace fs = std::filesystem;
  const std::string dir = MakeTempDir("roberta_bpe");
  const fs::path src = fs::path(ATTNSERVE_TEST_DATA) / "tiny_roberta";
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(src / f, fs::path(dir) / f);
  }
  Json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  int id = 4;
  for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = id++;
  for (const char* t : {"\xC4\xA0", "he", "ll", "hell", "hello", "\xC4\xA0w",
                        "or", "\xC4\xA0wor", "!", "<mask>"}) {
    vocab[t] = id++;
  }
  const Json tokenizer = {
      {"version", "1.0"},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false},
        {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}},
        {"cls", {"<s>", 0}}, {"trim_offsets", true},
        {"add_prefix_space", false}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"vocab", vocab},
        {"merges", {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r",
                    "\xC4\xA0w or"}}}}};
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
  return dir;
}

TEST(ServerRobertaTest, TextPairsTruncationAndModelInfo) {
  const std::string dir = RobertaWithBpe();
  std::unique_ptr<Server> server = StartServer(TestOptions(), dir);
  ASSERT_NE(server, nullptr);
  ASSERT_NE(server->tokenizer(), nullptr) << server->tokenizer_status();
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.family(), "roberta");
  EXPECT_EQ(info.model_type(), "roberta");
  EXPECT_EQ(info.max_tokens(), 40);
  EXPECT_EQ(info.max_position_embeddings(), 42);
  EXPECT_EQ(info.type_vocab_size(), 1);
  EXPECT_TRUE(info.has_tokenizer());

  // A pair on a model with one token type: all type 0, RoBERTa's framing.
  v1::EncodeRequest request;
  v1::Sequence* s = request.add_sequences();
  s->set_text("hello world!");
  s->set_text_pair("hello");
  request.set_return_hidden_states(true);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::SequenceResult& r = response.results(0);
  std::vector<std::string> tokens(r.tokens().begin(), r.tokens().end());
  EXPECT_THAT(tokens, ElementsAre("<s>", "hello", "\xC4\xA0wor", "l", "d", "!",
                                  "</s>", "</s>", "hello", "</s>"));

  // The same ids sent as ids give the same hidden states.
  v1::EncodeRequest by_ids;
  v1::Sequence* ids = by_ids.add_sequences();
  for (int32_t t : r.token_ids()) ids->add_token_ids(t);
  by_ids.set_return_hidden_states(true);
  v1::EncodeResponse by_ids_response;
  status = CallEncode(*stub, by_ids, &by_ids_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(DecodeFloat32(by_ids_response.results(0).hidden_states()),
            DecodeFloat32(r.hidden_states()));

  // Longer than max_tokens = 40: refused, or cut to 40 with truncate.
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "hello world ";
  v1::TokenizeRequest tokenize;
  tokenize.add_sequences()->set_text(long_text);
  v1::TokenizeResponse tokenized;
  status = CallTokenize(*stub, tokenize, &tokenized);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  tokenize.set_truncate(true);
  status = CallTokenize(*stub, tokenize, &tokenized);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokenized.results(0).token_ids_size(), 40);
  EXPECT_EQ(tokenized.results(0).token_ids(39), 2);  // </s>
}

// SentencePiece in a process that also runs libprotobuf (this binary links
// gRPC): libsentencepiece's own protobuf-lite stays inside its plugin.
[[maybe_unused]] constexpr char kNoDeepBind[] =
    "sanitizer builds load the SentencePiece plugin without RTLD_DEEPBIND "
    "(ASan and TSan abort on it, google/sanitizers#611), so its protobuf-lite "
    "3.14 meets libprotobuf 3.21 here; the Release suite runs this test";
TEST(ServerSentencePieceTest, LoadsAndEncodesNextToProtobuf) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << kNoDeepBind;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << kNoDeepBind;
#endif
#endif
  namespace fs = std::filesystem;
  const std::string dir = MakeTempDir("xlmr_spm");
  fs::copy_file(fs::path(ATTNSERVE_TEST_DATA) / "tokenizer_spm" /
                    "sentencepiece.bpe.model",
                fs::path(dir) / "sentencepiece.bpe.model");
  auto tokenizer = LoadTextTokenizer(dir, "xlm-roberta");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto e = (*tokenizer)->Encode("hello world", "", 64, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ids.front(), 0);
  EXPECT_EQ(e->ids.back(), 2);
  EXPECT_GT(e->ids.size(), 2u);
  v1::ModelInfo info;  // a protobuf message, after sentencepiece ran
  info.set_family("roberta");
  v1::ModelInfo back;
  ASSERT_TRUE(back.ParseFromString(info.SerializeAsString()));
  EXPECT_EQ(back.family(), "roberta");
}

}  // namespace
}  // namespace attnserve
