// Byte-level BPE (GPT-2, RoBERTa), as Hugging Face's tokenizers run it:
// the ByteLevel pre-tokenizer (optional prefix space, GPT-2's split regex),
// bytes mapped to GPT-2's printable alphabet, merges applied lowest rank
// first (leftmost on ties), then RoBERTa's <s> A </s></s> B </s>.
//
// Deliberate differences from Hugging Face:
// - Special tokens typed in the text ("<s>", "<mask>") are ordinary text, as
//   with WordPiece: a client cannot inject them (Hugging Face matches its
//   added tokens in the input first).
// - Pairs get token type 0 throughout, as transformers' RobertaTokenizer
//   does: RoBERTa has one token type (the Rust RobertaProcessing writes 1 for
//   B, which RoBERTa models never read).
//
// Threads: immutable after loading; const methods are safe from any thread.
#ifndef ATTNSERVE_MODEL_TEXT_BPE_H_
#define ATTNSERVE_MODEL_TEXT_BPE_H_

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

struct BpeOptions {
  bool add_prefix_space = false;  // ByteLevel: " " before text not starting so
  bool use_regex = true;          // ByteLevel: GPT-2's split regex
  bool ignore_merges = false;     // a whole word in the vocab skips merging
  std::string bos = "<s>";        // the special tokens (RobertaProcessing)
  std::string eos = "</s>";
  std::string unk;                // empty: characters outside the vocab vanish
};

class BpeTokenizer : public TextTokenizer {
 public:
  // `vocab`: token → id (ids need not be dense); `merges`: pairs of tokens,
  // rank = index. InvalidArgument when a merge's parts or result are missing
  // from the vocab, or the special tokens are.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(
      absl::flat_hash_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges,
      BpeOptions options, std::string source);

  // `dir`/tokenizer.json (model.type BPE with a ByteLevel pre-tokenizer), or
  // `dir`/vocab.json + `dir`/merges.txt (with tokenizer_config.json's
  // add_prefix_space). NotFound when neither is there.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Load(
      const std::string& dir);
  // From the parsed text of a tokenizer.json; `file` names it in errors.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(
      std::string_view json_text, const std::string& file);

  absl::StatusOr<Encoding> Encode(std::string_view text,
                                  std::string_view text_pair, int max_length,
                                  bool truncate) const override;
  const std::string& IdToToken(int32_t id) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  int vocab_size() const override { return vocab_size_; }
  int32_t sep_id() const override { return eos_id_; }
  std::string Describe() const override;

  // A token and the bytes of its text (not yet framed); exposed for tests.
  struct Piece {
    int32_t id;
    int32_t begin;
    int32_t end;
  };
  absl::StatusOr<std::vector<Piece>> Tokenize(std::string_view text,
                                              const char* which) const;

 private:
  BpeTokenizer() = default;
  // The BPE of one pre-token, given as GPT-2-alphabet symbols, appended as
  // (id, first symbol, end symbol) to `out`.
  void MergeWord(const std::vector<std::string>& symbols,
                 std::vector<std::pair<int32_t, std::pair<int, int>>>* out) const;

  absl::flat_hash_map<std::string, int32_t> ids_;  // token -> id
  std::vector<std::string> tokens_;                // id -> token ("" = gap)
  // (left id, right id) -> (rank, merged id)
  absl::flat_hash_map<std::pair<int32_t, int32_t>, std::pair<int32_t, int32_t>>
      merges_;
  BpeOptions options_;
  std::string source_;
  int vocab_size_ = 0;
  int32_t bos_id_ = 0, eos_id_ = 0, unk_id_ = -1;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_BPE_H_
