// Byte-level BPE (model/text/bpe.cc) on a hand-made vocabulary: the split,
// merge order, offsets, framing and truncation. Parity with Hugging Face on
// thousands of strings is tokenizer_parity_test.cc.
#include "model/text/bpe.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/text/text_tokenizer.h"

namespace attnserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Offsets = std::vector<std::pair<int32_t, int32_t>>;

// "Ġ" is GPT-2's symbol for the byte 0x20.
std::unique_ptr<BpeTokenizer> Make(bool prefix_space = false) {
  absl::flat_hash_map<std::string, int32_t> vocab = {
      {"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3},
      {"h", 4},   {"e", 5},     {"l", 6},    {"o", 7},
      {"Ġ", 8},   {"w", 9},     {"r", 10},   {"d", 11},
      {"he", 12}, {"ll", 13},   {"hell", 14}, {"hello", 15},
      {"Ġw", 16}, {"or", 17},   {"Ġwor", 18}, {"Ġworld", 19},
      {"'", 20},  {"s", 21},    {"'s", 22},  {"!", 23},
      {"Ã", 24},  {"©", 25},    {"Ã©", 26}, {"Ġh", 27},
      {"Ġhello", 28}, {"Ċ", 29}};
  std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"},   {"l", "l"},   {"he", "ll"},   {"hell", "o"},
      {"Ġ", "w"},   {"o", "r"},   {"Ġw", "or"},   {"Ġwor", "ld"},
      {"'", "s"},   {"Ã", "©"},   {"Ġ", "h"},     {"Ġh", "ello"}};
  BpeOptions options;
  options.add_prefix_space = prefix_space;
  // "ld" and "ello" are not in the vocab: those merges are refused below,
  // so drop them here.
  merges.erase(merges.begin() + 11);
  merges.erase(merges.begin() + 7);
  auto t = BpeTokenizer::Create(std::move(vocab), merges, options, "test");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

TEST(BpeTest, MergesByRankAndFramesWithSpecials) {
  auto t = Make();
  auto e = t->Encode("hello world", "", 64, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->tokens, ElementsAre("<s>", "hello", "Ġwor", "l", "d", "</s>"));
  EXPECT_THAT(e->ids, ElementsAre(0, 15, 18, 6, 11, 2));
  EXPECT_THAT(e->type_ids, ElementsAre(0, 0, 0, 0, 0, 0));
  // Byte offsets; the leading space is trimmed off "Ġwor".
  EXPECT_EQ(e->offsets, (Offsets{{0, 0}, {0, 5}, {6, 9}, {9, 10}, {10, 11},
                                 {0, 0}}));
}

TEST(BpeTest, PairIsSAsSsBs) {
  auto t = Make();
  auto e = t->Encode("he", "'s", 64, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->tokens,
              ElementsAre("<s>", "he", "</s>", "</s>", "'s", "</s>"));
  EXPECT_THAT(e->type_ids, ElementsAre(0, 0, 0, 0, 0, 0));
  EXPECT_EQ(e->offsets[4], std::make_pair(0, 2));  // in text_pair
}

TEST(BpeTest, PrefixSpaceHasNoSourceBytes) {
  auto t = Make(/*prefix_space=*/true);
  auto e = t->Encode("hello", "", 64, false);
  ASSERT_TRUE(e.ok()) << e.status();
  // "h e" outranks "Ġ h": the prefix space stays alone, an empty span.
  EXPECT_THAT(e->tokens, ElementsAre("<s>", "Ġ", "hello", "</s>"));
  EXPECT_EQ(e->offsets[1], std::make_pair(0, 0));
  EXPECT_EQ(e->offsets[2], std::make_pair(0, 5));
}

TEST(BpeTest, MultiByteCharactersShareTheirOffsets) {
  auto t = Make();
  // "é" is the bytes C3 A9 = "Ã©" in GPT-2's alphabet; "ñ" is C3 B1, whose
  // second byte is not in this vocab and vanishes (no unk token).
  auto e = t->Encode("\xC3\xA9\xC3\xB1", "", 64, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->tokens, ElementsAre("<s>", "Ã©", "Ã", "</s>"));
  EXPECT_EQ(e->offsets[1], std::make_pair(0, 2));
  EXPECT_EQ(e->offsets[2], std::make_pair(2, 4));  // whole character
}

TEST(BpeTest, TruncatesLongestFirstAsTheRustLibrary) {
  auto t = Make();
  // A = h e l o h (5 pieces: no merges across), B = 3 pieces; 6 special.
  auto e = t->Encode("ho ho ho", "hhh", 8, true);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ids.size(), 8u);
  auto refused = t->Encode("ho ho ho", "hhh", 8, false);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("the limit is 8"));
  size_t a = 4, b = 4;
  TruncateLongestFirstFast(7, &a, &b);
  EXPECT_EQ(a, 3u);  // a tie leaves B the extra token
  EXPECT_EQ(b, 4u);
  a = 2, b = 10;
  TruncateLongestFirstFast(7, &a, &b);
  EXPECT_EQ(a, 2u);
  EXPECT_EQ(b, 5u);
}

TEST(BpeTest, InvalidUtf8IsNamed) {
  auto t = Make();
  auto e = t->Encode("ok", "h\xFF", 64, false);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(),
              HasSubstr("text_pair is not valid UTF-8: bad sequence at byte "
                        "offset 1"));
}

TEST(BpeTest, MergeOutsideTheVocabIsRefused) {
  auto t = BpeTokenizer::Create({{"<s>", 0}, {"</s>", 1}, {"a", 2}},
                                {{"a", "a"}}, BpeOptions{}, "file");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("merge 0"));
}

TEST(BpeTest, TokenizerJsonSettingsThatCannotBeFollowedAreRefused) {
  auto t = BpeTokenizer::FromTokenizerJson(
      R"({"model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1},
          "merges": []},
          "normalizer": {"type": "NFC"},
          "pre_tokenizer": {"type": "ByteLevel"}})",
      "tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(t.status().message(), HasSubstr("normalizer"));
  auto w = BpeTokenizer::FromTokenizerJson(
      R"({"model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1},
          "merges": []}, "pre_tokenizer": {"type": "Whitespace"}})",
      "tokenizer.json");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("pre_tokenizer"));
}

}  // namespace
}  // namespace attnserve
