// A thin wrapper over libsentencepiece that keeps its header out of every
// file that includes Abseil: sentencepiece_processor.h declares
// `namespace absl { using std::string_view; }`, which clashes with Debian's
// Abseil (built with its own absl::string_view class). Only spm_shim.cc
// includes it; this header uses the standard library only.
//
// Threads: Encode is const and may run on many threads at once (as
// SentencePieceProcessor::Encode may).
#ifndef ATTNSERVE_MODEL_TEXT_SPM_SHIM_H_
#define ATTNSERVE_MODEL_TEXT_SPM_SHIM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnserve {

struct SpmPiece {
  int id;          // SentencePiece's own id
  uint32_t begin;  // byte [begin, end) in the input
  uint32_t end;
};

class SpmModel {
 public:
  // Loads a .model file; null with `*error` set on failure.
  static std::unique_ptr<SpmModel> Load(const std::string& path,
                                        std::string* error);
  ~SpmModel();

  // The pieces of `text`; false with `*error` set on failure.
  bool Encode(std::string_view text, std::vector<SpmPiece>* out,
              std::string* error) const;
  int size() const;
  std::string Piece(int id) const;
  int PieceToId(const std::string& piece) const;
  int unk_id() const;

 private:
  struct Impl;
  explicit SpmModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_SPM_SHIM_H_
