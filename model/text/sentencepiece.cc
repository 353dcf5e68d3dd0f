#include "model/text/sentencepiece.h"

#include <limits>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/utf8.h"

namespace attnserve {

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>>
SentencePieceTokenizer::Load(const std::string& path,
                             const std::string& model_type) {
  auto t = absl::WrapUnique(new SentencePieceTokenizer());
  std::string error;
  t->model_ = SpmModel::Load(path, &error);
  if (t->model_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a SentencePiece model: ", error));
  }
  t->path_ = path;
  // transformers' XLMRobertaTokenizer / CamembertTokenizer: four fairseq
  // specials, then the SentencePiece pieces shifted, then <mask>.
  std::vector<std::string> specials;
  if (model_type == "camembert") {
    t->offset_ = 4;
    specials = {"<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>"};
  } else if (model_type == "xlm-roberta" || model_type == "roberta") {
    t->offset_ = 1;
    specials = {"<s>", "<pad>", "</s>", "<unk>"};
  } else {
    return absl::UnimplementedError(absl::StrCat(
        path, ": SentencePiece id mapping for model_type \"", model_type,
        "\" is not known (xlm-roberta and camembert are)"));
  }
  const int n = t->model_->size();
  t->tokens_.assign(n + t->offset_ + 1, "");
  for (int i = 0; i < n; ++i) t->tokens_[i + t->offset_] = t->model_->Piece(i);
  for (size_t i = 0; i < specials.size(); ++i) t->tokens_[i] = specials[i];
  t->tokens_.back() = "<mask>";
  for (size_t i = 0; i < t->tokens_.size(); ++i) {
    t->ids_.try_emplace(t->tokens_[i], static_cast<int32_t>(i));
  }
  t->unk_id_ = 3;
  t->bos_id_ = t->ids_.at("<s>");
  t->eos_id_ = t->ids_.at("</s>");
  return t;
}

absl::StatusOr<Encoding> SentencePieceTokenizer::Encode(
    std::string_view text, std::string_view text_pair, int max_length,
    bool truncate) const {
  const bool is_pair = !text_pair.empty();
  const int num_special = is_pair ? 4 : 2;
  if (max_length < num_special) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_length %d cannot hold the %d special tokens",
                        max_length, num_special));
  }
  auto tokenize = [&](std::string_view s, const char* which)
      -> absl::StatusOr<std::vector<SpmPiece>> {
    if (s.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, " is longer than 2^31 - 1 bytes"));
    }
    if (const int64_t bad = FirstInvalidUtf8(s); bad >= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s is not valid UTF-8: bad sequence at byte offset %d (byte 0x%02X)",
          which, bad, static_cast<unsigned char>(s[bad])));
    }
    std::vector<SpmPiece> pieces;
    std::string error;
    if (!model_->Encode(s, &pieces, &error)) {
      return absl::InternalError(absl::StrCat("SentencePiece: ", error));
    }
    return pieces;
  };
  absl::StatusOr<std::vector<SpmPiece>> a = tokenize(text, "text");
  if (!a.ok()) return a.status();
  std::vector<SpmPiece> b;
  if (is_pair) {
    absl::StatusOr<std::vector<SpmPiece>> pb = tokenize(text_pair, "text_pair");
    if (!pb.ok()) return pb.status();
    b = *std::move(pb);
  }
  const size_t length = a->size() + b.size() + num_special;
  if (length > static_cast<size_t>(max_length)) {
    if (!truncate) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the input has %d tokens including special tokens; the limit is %d",
          length, max_length));
    }
    size_t na = a->size(), nb = b.size();
    if (is_pair) {
      TruncateLongestFirstFast(max_length - num_special, &na, &nb);
    } else {
      na = max_length - num_special;
    }
    a->resize(na);
    b.resize(nb);
  }
  Encoding e;
  auto add = [&](int32_t id, int32_t begin, int32_t end) {
    e.ids.push_back(id);
    e.tokens.push_back(tokens_[id]);
    e.type_ids.push_back(0);
    e.offsets.emplace_back(begin, end);
  };
  auto add_pieces = [&](const std::vector<SpmPiece>& pieces) {
    for (const SpmPiece& p : pieces) {
      const int32_t id =
          p.id == model_->unk_id() ? unk_id_ : p.id + offset_;
      add(id, static_cast<int32_t>(p.begin), static_cast<int32_t>(p.end));
    }
  };
  add(bos_id_, 0, 0);
  add_pieces(*a);
  add(eos_id_, 0, 0);
  if (is_pair) {
    add(eos_id_, 0, 0);
    add_pieces(b);
    add(eos_id_, 0, 0);
  }
  return e;
}

const std::string& SentencePieceTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return tokens_[unk_id_];
  return tokens_[id];
}

std::optional<int32_t> SentencePieceTokenizer::TokenToId(
    std::string_view token) const {
  const auto it = ids_.find(absl::string_view(token.data(), token.size()));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string SentencePieceTokenizer::Describe() const {
  return absl::StrFormat("SentencePiece from %s, ids = pieces + %d", path_,
                         offset_);
}

}  // namespace attnserve
