// No Abseil header may be included here (see spm_shim.h).
#include "model/text/spm_shim.h"

#include <sentencepiece_processor.h>

#include <utility>

namespace attnserve {

struct SpmModel::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SpmModel::SpmModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SpmModel::~SpmModel() = default;

std::unique_ptr<SpmModel> SpmModel::Load(const std::string& path,
                                         std::string* error) {
  auto impl = std::make_unique<Impl>();
  const sentencepiece::util::Status status = impl->processor.Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return std::unique_ptr<SpmModel>(new SpmModel(std::move(impl)));
}

bool SpmModel::Encode(std::string_view text, std::vector<SpmPiece>* out,
                      std::string* error) const {
  const sentencepiece::ImmutableSentencePieceText spt =
      impl_->processor.EncodeAsImmutableProto(text);
  out->clear();
  out->reserve(spt.pieces_size());
  for (size_t i = 0; i < spt.pieces_size(); ++i) {
    const auto piece = spt.pieces(static_cast<int>(i));
    out->push_back({static_cast<int>(piece.id()), piece.begin(), piece.end()});
  }
  (void)error;  // EncodeAsImmutableProto reports no status: an empty result
  return true;
}

int SpmModel::size() const { return impl_->processor.GetPieceSize(); }
std::string SpmModel::Piece(int id) const {
  return impl_->processor.IdToPiece(id);
}
int SpmModel::PieceToId(const std::string& piece) const {
  return impl_->processor.PieceToId(piece);
}
int SpmModel::unk_id() const { return impl_->processor.unk_id(); }

}  // namespace attnserve
