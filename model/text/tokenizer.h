// BERT's WordPiece tokenizer, as Google's tokenization.py (BasicTokenizer +
// WordpieceTokenizer) defines it, with the [CLS]/[SEP] framing, token types and
// truncation of Hugging Face's BertTokenizer, and byte offsets into the
// caller's text. Lower-casing is per code point as in Hugging Face's
// tokenizers ("Σ" is always "σ"; Python's str.lower() would give a word-final
// "ς").
//
// Deliberate differences from Hugging Face (the first two follow Google's
// code, the last transformers' Python tokenizer):
// - "[CLS]", "[MASK]", ... typed in the text are ordinary text ("[", "cls",
//   "]"), never special tokens: a client cannot inject them.
// - No NFC pass before splitting (recent transformers added one to its slow
//   tokenizer); it only matters for do_lower_case=false with decomposed input.
// - Truncation breaks a tie as BertTokenizer does (from B), not as
//   BertTokenizerFast does (see TruncateLongestFirst in tokenizer.cc).
//
// Threads: Load() and FromVocab() may run on any thread; the result is
// immutable and its const methods may be called from many threads at once.
#ifndef ATTNSERVE_MODEL_TEXT_TOKENIZER_H_
#define ATTNSERVE_MODEL_TEXT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/text/text_tokenizer.h"

namespace attnserve {

class Tokenizer : public TextTokenizer {
 public:
  // BERT's max_input_chars_per_word: longer words (in code points, after
  // normalization) become [UNK] without trying WordPiece.
  static constexpr int kMaxWordChars = 100;

  // Reads `dir`/vocab.txt (one token per line, id = line number) or, when
  // there is none, the WordPiece vocab of `dir`/tokenizer.json (and its
  // normalizer.lowercase). `dir`/tokenizer_config.json's do_lower_case, when
  // present, wins over both (as in transformers). NotFound when the directory
  // has neither vocab file; InvalidArgument for malformed files or a vocab
  // without [UNK], [CLS] and [SEP]; Unimplemented for settings this tokenizer
  // cannot follow (another model type, strip_accents != lowercase, a
  // continuation prefix other than "##", ...).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::string& dir);

  // `vocab`[id] is the token of id; on duplicates the last id wins, as in
  // BERT's load_vocab.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocab(
      std::vector<std::string> vocab, bool do_lower_case);

  // Tokenizes `text` (and `text_pair` unless empty) and adds the special
  // tokens. `max_length` counts the special tokens. A longer input is an
  // InvalidArgument unless `truncate`, which drops tokens from the end of the
  // longer part first (Hugging Face's "longest_first"). Also InvalidArgument:
  // invalid UTF-8 (with the byte offset of the bad sequence) and a
  // `max_length` that cannot hold the special tokens.
  absl::StatusOr<Encoding> Encode(std::string_view text,
                                  std::string_view text_pair, int max_length,
                                  bool truncate) const override;

  // The token of `id`; the [UNK] token for ids outside the vocab.
  const std::string& IdToToken(int32_t id) const override;
  // The id of `token`, or nullopt when the vocab does not hold it.
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  int vocab_size() const override { return static_cast<int>(vocab_.size()); }
  int32_t sep_id() const override { return sep_id_; }
  std::string Describe() const override;
  bool do_lower_case() const { return do_lower_case_; }

 private:
  Tokenizer() = default;

  std::vector<std::string> vocab_;                 // id -> token
  absl::flat_hash_map<std::string, int32_t> ids_;  // token -> id
  bool do_lower_case_ = true;
  int32_t unk_id_ = 0;
  int32_t cls_id_ = 0;
  int32_t sep_id_ = 0;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_TOKENIZER_H_
