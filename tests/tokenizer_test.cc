// Tests for model/tokenizer.h.
//
// The expectations in tests/data/tokenizer/expected.json (tokens, ids, token
// types, byte offsets, errors) were produced without this C++ code by
// tools/tokenizer_reference.py: a plain Python transcription of Google's BERT
// tokenization.py on Python's unicodedata (Unicode 14.0), with offsets from a
// separate source-tracking pass and Hugging Face's framing and longest_first
// truncation; its docstring says how to regenerate them. The inputs
// (tests/data/tokenizer/inputs.json) avoid code points whose properties
// differ between Unicode 14.0 and utf8proc's 15.0. Lower-casing cases run on
// tests/data/tokenizer/vocab.txt; cased ones on json/tokenizer.json (same
// vocab, lowercase: false), so every case also exercises a loader.
#include "model/text/tokenizer.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::HasSubstr;

const std::string kDataDir = ATTNSERVE_TEST_DATA "/tokenizer";

using TokenizerOr = absl::StatusOr<std::unique_ptr<Tokenizer>>;

// Loaded once: the tokenizers are immutable and shared, as in the server.
const TokenizerOr& LowerTokenizer() {
  static const auto* tokenizer = new TokenizerOr(Tokenizer::Load(kDataDir));
  return *tokenizer;
}
const TokenizerOr& CasedTokenizer() {
  static const auto* tokenizer =
      new TokenizerOr(Tokenizer::Load(kDataDir + "/json"));
  return *tokenizer;
}

std::string Unhex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(
        static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// A case's `which` text: "text"/"text_pair" as a string, or "..._hex" bytes
// when it is not valid UTF-8; absent = empty.
std::string TextOf(const json& c, const std::string& which) {
  if (c.contains(which)) return c[which].get<std::string>();
  if (c.contains(which + "_hex")) return Unhex(c[which + "_hex"]);
  return "";
}

struct Vector {
  std::string name;
  json expected;  // one element of expected.json's "cases"; null if unreadable
};

std::vector<Vector> LoadVectors() {
  std::ifstream in(kDataDir + "/expected.json");
  const json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("cases")) {
    return {{"ExpectedJsonIsUnreadable", json()}};
  }
  std::vector<Vector> vectors;
  for (const json& c : doc["cases"]) vectors.push_back({c["name"], c});
  return vectors;
}

// gtest prints a failing parameter with this instead of its bytes.
void PrintTo(const Vector& vector, std::ostream* os) { *os << vector.name; }

class ReferenceTest : public testing::TestWithParam<Vector> {};

TEST_P(ReferenceTest, MatchesPythonBert) {
  const json& c = GetParam().expected;
  ASSERT_FALSE(c.is_null()) << "cannot read " << kDataDir << "/expected.json";
  const TokenizerOr& tokenizer =
      c["lower"].get<bool>() ? LowerTokenizer() : CasedTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = TextOf(c, "text");
  const std::string pair = TextOf(c, "text_pair");
  const absl::StatusOr<Encoding> encoding =
      (*tokenizer)
          ->Encode(text, pair, c["max_length"].get<int>(),
                   c["truncate"].get<bool>());

  if (c.contains("error")) {
    ASSERT_FALSE(encoding.ok());
    EXPECT_EQ(encoding.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(encoding.status().message());
    const json& error = c["error"];
    if (error.contains("which")) {
      EXPECT_THAT(message,
                  HasSubstr(absl::StrCat(error["which"].get<std::string>(),
                                         " is not valid UTF-8")));
      EXPECT_THAT(message,
                  HasSubstr(absl::StrCat("byte offset ",
                                         error["offset"].get<int>(), " ")));
    } else if (error.contains("specials")) {
      EXPECT_THAT(message,
                  HasSubstr(absl::StrCat(
                      "max_length ", error["limit"].get<int>(),
                      " cannot hold the ", error["specials"].get<int>())));
    } else {
      EXPECT_THAT(message, HasSubstr(absl::StrCat(
                               "has ", error["length"].get<int>(), " tokens")));
      EXPECT_THAT(message, HasSubstr(absl::StrCat("limit is ",
                                                  error["limit"].get<int>())));
    }
    return;
  }
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  EXPECT_EQ(encoding->tokens, c["tokens"].get<std::vector<std::string>>());
  EXPECT_EQ(encoding->ids, c["ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(encoding->type_ids, c["type_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(encoding->offsets,
            (c["offsets"].get<std::vector<std::pair<int32_t, int32_t>>>()));
}

INSTANTIATE_TEST_SUITE_P(Python, ReferenceTest,
                         testing::ValuesIn(LoadVectors()),
                         [](const testing::TestParamInfo<Vector>& info) {
                           return info.param.name;
                         });

// ---- Loading ----------------------------------------------------------------

// A fresh directory under the test's temp dir holding `files` (name, content).
std::string MakeDir(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& files) {
  const fs::path dir = fs::path(testing::TempDir()) / "tokenizer_test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& [file, content] : files) {
    std::ofstream(dir / file, std::ios::binary) << content;
  }
  return dir.string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(TokenizerLoadTest, VocabTxt) {
  const TokenizerOr& tokenizer = LowerTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 264);
  EXPECT_TRUE((*tokenizer)->do_lower_case());
  EXPECT_EQ((*tokenizer)->IdToToken(0), "[PAD]");
  EXPECT_EQ((*tokenizer)->IdToToken(2), "[CLS]");
  EXPECT_EQ((*tokenizer)->TokenToId("[SEP]"), 3);
  EXPECT_EQ((*tokenizer)->TokenToId("nope"), std::nullopt);
}

TEST(TokenizerLoadTest, TokenizerJsonHasTheSameVocab) {
  const TokenizerOr& lower = LowerTokenizer();
  const TokenizerOr& cased = CasedTokenizer();
  ASSERT_TRUE(lower.ok()) << lower.status();
  ASSERT_TRUE(cased.ok()) << cased.status();
  EXPECT_FALSE((*cased)->do_lower_case());
  ASSERT_EQ((*cased)->vocab_size(), (*lower)->vocab_size());
  for (int32_t id = 0; id < (*lower)->vocab_size(); ++id) {
    EXPECT_EQ((*cased)->IdToToken(id), (*lower)->IdToToken(id)) << id;
  }
}

TEST(TokenizerLoadTest, TokenizerConfigDecidesLowerCase) {
  const std::string json_text = ReadFile(kDataDir + "/json/tokenizer.json");
  TokenizerOr from_json = Tokenizer::Load(
      MakeDir("config_json",
              {{"tokenizer.json", json_text},
               {"tokenizer_config.json", R"({"do_lower_case": true})"}}));
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  EXPECT_TRUE((*from_json)->do_lower_case());

  TokenizerOr from_txt = Tokenizer::Load(
      MakeDir("config_txt",
              {{"vocab.txt", "[UNK]\n[CLS]\n[SEP]\nab\n"},
               {"tokenizer_config.json", R"({"do_lower_case": false})"}}));
  ASSERT_TRUE(from_txt.ok()) << from_txt.status();
  EXPECT_FALSE((*from_txt)->do_lower_case());
  absl::StatusOr<Encoding> encoding =
      (*from_txt)->Encode("AB ab", "", 8, false);
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  EXPECT_EQ(encoding->tokens,
            (std::vector<std::string>{"[CLS]", "[UNK]", "ab", "[SEP]"}));
}

TEST(TokenizerLoadTest, PrefersVocabTxt) {
  TokenizerOr tokenizer = Tokenizer::Load(MakeDir(
      "both",
      {{"vocab.txt", "[UNK]\n[CLS]\n[SEP]\n"},
       {"tokenizer.json", ReadFile(kDataDir + "/json/tokenizer.json")}}));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 3);
  EXPECT_TRUE((*tokenizer)->do_lower_case());
}

TEST(TokenizerLoadTest, CrlfLinesAndDuplicates) {
  // BERT's load_vocab: a repeated token takes its last line's id.
  TokenizerOr tokenizer = Tokenizer::Load(MakeDir(
      "crlf", {{"vocab.txt", "dup\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\ndup"}}));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 5);
  EXPECT_EQ((*tokenizer)->TokenToId("dup"), 4);
  EXPECT_EQ((*tokenizer)->TokenToId("[UNK]"), 1);
  EXPECT_EQ((*tokenizer)->IdToToken(0), "dup");
}

TEST(TokenizerLoadTest, NotFoundWithoutVocab) {
  TokenizerOr tokenizer =
      Tokenizer::Load(MakeDir("empty", {{"tokenizer_config.json", "{}"}}));
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerLoadTest, RejectsVocabWithoutSpecialTokens) {
  TokenizerOr tokenizer = Tokenizer::FromVocab({"[UNK]", "[CLS]", "a"}, true);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokenizer.status().message(), HasSubstr("[SEP]"));
}

TEST(TokenizerLoadTest, RejectsBadTokenizerJson) {
  const std::string vocab = R"("vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2})";
  const struct {
    const char* name;
    std::string json_text;
    absl::StatusCode code;
  } kCases[] = {
      {"not_json", "{", absl::StatusCode::kInvalidArgument},
      {"no_model", "{}", absl::StatusCode::kInvalidArgument},
      {"bpe", R"({"model": {"type": "BPE", )" + vocab + "}}",
       absl::StatusCode::kUnimplemented},
      {"prefix",
       R"({"model": {"continuing_subword_prefix": "@@", )" + vocab + "}}",
       absl::StatusCode::kUnimplemented},
      {"gap", R"({"model": {"vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 3}}})",
       absl::StatusCode::kInvalidArgument},
      {"strip_accents",
       R"({"normalizer": {"lowercase": false, "strip_accents": true},
           "model": {)" +
           vocab + "}}",
       absl::StatusCode::kUnimplemented},
  };
  for (const auto& c : kCases) {
    TokenizerOr tokenizer =
        Tokenizer::Load(MakeDir(c.name, {{"tokenizer.json", c.json_text}}));
    EXPECT_EQ(tokenizer.status().code(), c.code)
        << c.name << ": " << tokenizer.status();
  }
  TokenizerOr ok = Tokenizer::Load(
      MakeDir("minimal", {{"tokenizer.json", "{\"model\": {" + vocab + "}}"}}));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

// ---- API details the vectors do not show
// --------------------------------------

TEST(TokenizerTest, IdToTokenIsUnkOutsideTheVocab) {
  const TokenizerOr& tokenizer = LowerTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->IdToToken(-1), "[UNK]");
  EXPECT_EQ((*tokenizer)->IdToToken((*tokenizer)->vocab_size()), "[UNK]");
}

TEST(TokenizerTest, FromVocabMatchesLoad) {
  const TokenizerOr& loaded = LowerTokenizer();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::vector<std::string> vocab;
  for (int32_t id = 0; id < (*loaded)->vocab_size(); ++id) {
    vocab.push_back((*loaded)->IdToToken(id));
  }
  TokenizerOr built = Tokenizer::FromVocab(std::move(vocab), true);
  ASSERT_TRUE(built.ok()) << built.status();
  const char kText[] = "Héllo, WORLD! unaffable 中文";
  absl::StatusOr<Encoding> a = (*loaded)->Encode(kText, "the cafe", 64, false);
  absl::StatusOr<Encoding> b = (*built)->Encode(kText, "the cafe", 64, false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ids, b->ids);
  EXPECT_EQ(a->offsets, b->offsets);
}

// The server tokenizes on many gRPC threads with one shared Tokenizer.
TEST(TokenizerTest, ConcurrentEncodesAgree) {
  const TokenizerOr& tokenizer = LowerTokenizer();
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::vector<std::string> texts;
  for (const Vector& v : LoadVectors()) {
    if (!v.expected.is_null()) texts.push_back(TextOf(v.expected, "text"));
  }
  std::vector<absl::StatusOr<Encoding>> want;
  for (const std::string& text : texts) {
    want.push_back((*tokenizer)->Encode(text, "", 512, true));
  }
  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          absl::StatusOr<Encoding> got =
              (*tokenizer)->Encode(texts[i], "", 512, true);
          const bool same = got.ok()
                                ? want[i].ok() && got->ids == want[i]->ids &&
                                      got->offsets == want[i]->offsets
                                : got.status() == want[i].status();
          if (!same) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace attnserve
