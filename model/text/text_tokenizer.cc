#include "model/text/text_tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "model/text/bpe.h"
#include "model/text/sentencepiece.h"
#include "model/text/tokenizer.h"
#include "nlohmann/json.hpp"

namespace attnserve {

void TruncateLongestFirstFast(size_t budget, size_t* a, size_t* b) {
  if (*a + *b <= budget) return;
  size_t* shorter = *a > *b ? b : a;  // on a tie, A
  size_t* longer = shorter == a ? b : a;
  *shorter = std::min(*shorter, budget / 2);
  *longer = std::min(*longer, budget - *shorter);
}

absl::StatusOr<std::unique_ptr<TextTokenizer>> LoadTextTokenizer(
    const std::string& dir, const std::string& model_type) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path root(dir);
  // SentencePiece first: XLM-R and CamemBERT ship the .model next to a
  // tokenizer.json whose Unigram model attnserve does not run itself.
  for (const char* name : {"sentencepiece.bpe.model", "spiece.model"}) {
    if (fs::exists(root / name, error)) {
      ASSIGN_OR_RETURN(auto t, SentencePieceTokenizer::Load(
                                   (root / name).string(), model_type));
      return std::unique_ptr<TextTokenizer>(std::move(t));
    }
  }
  const fs::path tokenizer_json = root / "tokenizer.json";
  if (fs::exists(tokenizer_json, error)) {
    ASSIGN_OR_RETURN(const std::string text,
                     ReadFile(tokenizer_json.string()));
    const nlohmann::json json =
        nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::string type;
    if (json.is_object() && json.contains("model") &&
        json["model"].is_object()) {
      type = json["model"].value("type", "");
    }
    if (type == "BPE") {
      ASSIGN_OR_RETURN(auto t, BpeTokenizer::FromTokenizerJson(
                                   text, tokenizer_json.string()));
      return std::unique_ptr<TextTokenizer>(std::move(t));
    }
    if (type == "Unigram") {
      return absl::UnimplementedError(absl::StrCat(
          tokenizer_json.string(),
          ": a Unigram tokenizer.json is run only from its SentencePiece "
          "model: put sentencepiece.bpe.model (as the checkpoint ships it) "
          "next to it. (Its normalizer is a precompiled SentencePiece "
          "charsmap, which attnserve does not reimplement.)"));
    }
    // WordPiece (or no type: older files) goes to the BERT tokenizer, which
    // prefers vocab.txt when both are there.
  }
  if (fs::exists(root / "vocab.txt", error) ||
      fs::exists(tokenizer_json, error)) {
    ASSIGN_OR_RETURN(auto t, Tokenizer::Load(dir));
    return std::unique_ptr<TextTokenizer>(std::move(t));
  }
  if (fs::exists(root / "vocab.json", error) &&
      fs::exists(root / "merges.txt", error)) {
    ASSIGN_OR_RETURN(auto t, BpeTokenizer::Load(dir));
    return std::unique_ptr<TextTokenizer>(std::move(t));
  }
  return absl::NotFoundError(absl::StrCat(
      "no tokenizer in ", dir,
      " (looked for sentencepiece.bpe.model, tokenizer.json, vocab.txt, "
      "vocab.json + merges.txt)"));
}

}  // namespace attnserve
