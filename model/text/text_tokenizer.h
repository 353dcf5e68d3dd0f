// The text front end of a model: one interface over the tokenizer kinds a
// checkpoint may ship, so the server calls one Encode whatever the family.
//
//   kind            files                                     class
//   WordPiece       vocab.txt, or tokenizer.json (WordPiece)   Tokenizer (tokenizer.h)
//   byte-level BPE  tokenizer.json (BPE + ByteLevel), or       BpeTokenizer (bpe.h)
//                   vocab.json + merges.txt
//   SentencePiece   sentencepiece.bpe.model (libsentencepiece) SentencePieceTokenizer
//
// Every kind returns byte offsets into the caller's text, adds the family's
// special tokens ([CLS] A [SEP] B [SEP], or <s> A </s></s> B </s>) and
// truncates "longest_first".
//
// Threads: loading may run on any thread; a loaded tokenizer is immutable
// and its const methods may be called from many threads at once.
#ifndef ATTNSERVE_MODEL_TEXT_TEXT_TOKENIZER_H_
#define ATTNSERVE_MODEL_TEXT_TEXT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace attnserve {

// One model input, with its special tokens. All four vectors have one entry
// per token.
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  // BERT: 0 for [CLS] A [SEP], 1 for B [SEP]. RoBERTa family: all 0 (one
  // token type).
  std::vector<int32_t> type_ids;
  // Byte [start, end) in the source text (B's tokens: in text_pair); (0, 0)
  // for special tokens. Never inside a UTF-8 character, so pieces of one
  // character (Hangul jamo after NFD, bytes of a byte-level BPE token) share
  // it.
  std::vector<std::pair<int32_t, int32_t>> offsets;
};

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;

  // Tokenizes `text` (and `text_pair` unless empty) and adds the special
  // tokens. `max_length` counts the special tokens. A longer input is an
  // InvalidArgument unless `truncate`, which drops tokens from the end of the
  // longer part first ("longest_first"). Also InvalidArgument: invalid UTF-8
  // (naming "text" or "text_pair" and the byte offset) and a `max_length`
  // that cannot hold the special tokens.
  virtual absl::StatusOr<Encoding> Encode(std::string_view text,
                                          std::string_view text_pair,
                                          int max_length,
                                          bool truncate) const = 0;

  // The token of `id`; the unknown token for ids outside the vocab.
  virtual const std::string& IdToToken(int32_t id) const = 0;
  // The id of `token`, or nullopt when the vocab does not hold it.
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  virtual int vocab_size() const = 0;
  // The separator ([SEP], </s>): head statistics measure attention to it.
  virtual int32_t sep_id() const = 0;
  // For the startup log, after the token count: "WordPiece,
  // do_lower_case=true", "byte-level BPE from .../tokenizer.json, ...".
  virtual std::string Describe() const = 0;
};

// The tokenizer that `dir` ships, for a model of config.json model_type
// `model_type` (which decides the special tokens of SentencePiece models):
// sentencepiece.bpe.model, else tokenizer.json by its model.type, else
// vocab.txt, else vocab.json + merges.txt. NotFound when there is none;
// Unimplemented for a kind or setting that cannot be matched exactly (e.g.
// tokenizer.json's Unigram without the .model file).
absl::StatusOr<std::unique_ptr<TextTokenizer>> LoadTextTokenizer(
    const std::string& dir, const std::string& model_type = "bert");

// "longest_first" as Hugging Face's Rust tokenizers do it, for a pair of
// lengths `*a`, `*b` into `budget` tokens: the shorter keeps at most
// budget / 2 (rounded down; on a tie that is A), the longer the rest.
void TruncateLongestFirstFast(size_t budget, size_t* a, size_t* b);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_TEXT_TOKENIZER_H_
