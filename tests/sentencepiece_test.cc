// SentencePiece through libsentencepiece (model/text/sentencepiece.cc): the
// fairseq id mapping of XLM-R and CamemBERT, framing, offsets, truncation,
// errors. Agreement with Hugging Face is tokenizer_parity_test.cc.
#include "model/text/sentencepiece.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/text/spm_shim.h"

namespace attnserve {
namespace {

using ::testing::HasSubstr;

std::string ModelPath() {
  return std::string(ATTNSERVE_TEST_DATA) +
         "/tokenizer_spm/sentencepiece.bpe.model";
}

TEST(SentencePieceTest, XlmRobertaIdsAreShiftedByOne) {
  auto t = SentencePieceTokenizer::Load(ModelPath(), "xlm-roberta");
  ASSERT_TRUE(t.ok()) << t.status();
  std::string error;
  auto raw = SpmModel::Load(ModelPath(), &error);
  ASSERT_NE(raw, nullptr) << error;
  std::vector<SpmPiece> pieces;
  ASSERT_TRUE(raw->Encode("hello world", &pieces, &error));
  auto e = (*t)->Encode("hello world", "", 512, false);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->ids.size(), pieces.size() + 2);
  EXPECT_EQ(e->ids.front(), 0);  // <s>
  EXPECT_EQ(e->ids.back(), 2);   // </s>
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(e->ids[i + 1], pieces[i].id + 1);
    EXPECT_EQ(e->tokens[i + 1], raw->Piece(pieces[i].id));
  }
  EXPECT_EQ((*t)->vocab_size(), raw->size() + 2);  // + <s>-shift, + <mask>
  EXPECT_EQ((*t)->IdToToken((*t)->vocab_size() - 1), "<mask>");
  EXPECT_EQ((*t)->sep_id(), 2);
  EXPECT_EQ((*t)->TokenToId("<pad>"), 1);
}

TEST(SentencePieceTest, CamembertIdsAreShiftedByFour) {
  auto t = SentencePieceTokenizer::Load(ModelPath(), "camembert");
  ASSERT_TRUE(t.ok()) << t.status();
  auto e = (*t)->Encode("hello", "world", 512, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ids.front(), 5);  // SentencePiece's <s> (1) + 4
  EXPECT_EQ(e->ids.back(), 6);   // </s> (2) + 4
  EXPECT_EQ((*t)->sep_id(), 6);
  EXPECT_EQ((*t)->TokenToId("<s>NOTUSED"), 0);
}

TEST(SentencePieceTest, PairsOffsetsAndUnknowns) {
  auto t = SentencePieceTokenizer::Load(ModelPath(), "xlm-roberta");
  ASSERT_TRUE(t.ok()) << t.status();
  // "☃" is not in this small vocab: <unk> = 3.
  auto e = (*t)->Encode("the cat", "\xE2\x98\x83", 512, false);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ids[0], 0);
  const size_t n = e->ids.size();
  EXPECT_EQ(e->ids[n - 1], 2);
  EXPECT_THAT(e->ids, ::testing::Contains(3));
  for (int32_t type : e->type_ids) EXPECT_EQ(type, 0);
  // Offsets are bytes into the text they came from.
  for (size_t i = 1; i < n; ++i) {
    EXPECT_LE(e->offsets[i].first, e->offsets[i].second);
    EXPECT_LE(e->offsets[i].second, 7);
  }
}

TEST(SentencePieceTest, TruncationAndErrors) {
  auto t = SentencePieceTokenizer::Load(ModelPath(), "xlm-roberta");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::string text = "the quick brown fox jumps over the lazy dog";
  auto refused = (*t)->Encode(text, "", 5, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("the limit is 5"));
  auto cut = (*t)->Encode(text, "", 5, true);
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_EQ(cut->ids.size(), 5u);
  EXPECT_EQ(cut->ids.back(), 2);
  auto bad = (*t)->Encode("ok", "a\xC0", 64, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("text_pair is not valid UTF-8: bad sequence at byte "
                        "offset 1"));
  auto unknown = SentencePieceTokenizer::Load(ModelPath(), "t5");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnimplemented);
  auto missing = SentencePieceTokenizer::Load("/nonexistent.model", "xlm-roberta");
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace attnserve
