// SentencePiece for the tokenizers, through libattnserve_spm.so (see
// spm_plugin.cc for why it is a plugin): dlopen'ed on first use, locally and
// with deep binding, from $ATTNSERVE_SPM_PLUGIN, else next to the running
// executable, else the build directory it was built in.
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
  // Loads a .model file; null with `*error` set on failure (also when the
  // plugin cannot be loaded).
  static std::unique_ptr<SpmModel> Load(const std::string& path,
                                        std::string* error);
  ~SpmModel();

  // The pieces of `text`; false with `*error` set on failure.
  bool Encode(std::string_view text, std::vector<SpmPiece>* out,
              std::string* error) const;
  int size() const;
  std::string Piece(int id) const;
  int unk_id() const;

  struct Api;  // the plugin's functions (spm_shim.cc)

 private:
  SpmModel(const Api* api, void* model) : api_(api), model_(model) {}
  const Api* api_;
  void* model_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_TEXT_SPM_SHIM_H_
