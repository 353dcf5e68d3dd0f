// SentencePiece models as XLM-RoBERTa and CamemBERT ship them
// (sentencepiece.bpe.model), run by Debian's libsentencepiece, with the
// fairseq id mapping transformers applies and RoBERTa's framing
// <s> A </s></s> B </s> (token type 0 throughout).
//
//   model_type    specials (id)                             pieces
//   xlm-roberta   <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> last  SentencePiece id + 1
//   camembert     <s>NOTUSED 0, <pad> 1, </s>NOTUSED 2,       SentencePiece id + 4
//                 <unk> 3, <mask> last                       (<s> = 5, </s> = 6)
//
// Text typed as "<s>" or "<mask>" is ordinary text (no special-token
// injection), as with the other tokenizers.
//
// Threads: immutable after Load; const methods are safe from any thread.
#ifndef ATTNSERVE_MODEL_TEXT_SENTENCEPIECE_H_
#define ATTNSERVE_MODEL_TEXT_SENTENCEPIECE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/text/spm_shim.h"
#include "model/text/text_tokenizer.h"

namespace attnserve {

class SentencePieceTokenizer : public TextTokenizer {
 public:
  // `path`: a SentencePiece .model file; `model_type`: xlm-roberta (also
  // roberta, for XLM-R-style checkpoints that say so) or camembert.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(
      const std::string& path, const std::string& model_type);

  absl::StatusOr<Encoding> Encode(std::string_view text,
                                  std::string_view text_pair, int max_length,
                                  bool truncate) const override;
  const std::string& IdToToken(int32_t id) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  int vocab_size() const override { return static_cast<int>(tokens_.size()); }
  int32_t sep_id() const override { return eos_id_; }
  std::string Describe() const override;

 private:
  SentencePieceTokenizer() = default;

  std::unique_ptr<SpmModel> model_;
  std::string path_;
  std::vector<std::string> tokens_;                // model id -> token
  absl::flat_hash_map<std::string, int32_t> ids_;  // token -> model id
  int32_t offset_ = 1;  // model id = SentencePiece id + offset_
  int32_t bos_id_ = 0, eos_id_ = 2, unk_id_ = 3;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_SENTENCEPIECE_H_
