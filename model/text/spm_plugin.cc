// libattnserve_spm.so: libsentencepiece behind a C interface, loaded by
// spm_shim.cc with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) (no RTLD_DEEPBIND in
// sanitizer builds, which refuse it; see spm_shim.cc).
//
// Why a plugin: Debian's libsentencepiece.so carries its own copy of
// protobuf-lite and exports its symbols. Linked into a process that also
// loads libprotobuf.so (gRPC, our protos), the dynamic linker binds
// libprotobuf's own calls to sentencepiece's copies and the process crashes
// in protobuf's static initializers. Loaded locally with deep binding,
// sentencepiece uses only its copy and nobody else sees it.
//
// No Abseil here either: sentencepiece_processor.h declares
// `namespace absl { using std::string_view; }`.
#include <sentencepiece_processor.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

extern "C" {

__attribute__((visibility("default"))) void* attnserve_spm_load(
    const char* path, char* error, size_t error_size) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const sentencepiece::util::Status status = processor->Load(path);
  if (!status.ok()) {
    std::snprintf(error, error_size, "%s", status.ToString().c_str());
    delete processor;
    return nullptr;
  }
  return processor;
}

__attribute__((visibility("default"))) void attnserve_spm_free(void* model) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(model);
}

// Writes up to `capacity` pieces; returns how many there are (call again
// with more room when that is larger).
__attribute__((visibility("default"))) size_t attnserve_spm_encode(
    const void* model, const char* text, size_t size, int32_t* ids,
    uint32_t* begins, uint32_t* ends, size_t capacity) {
  const auto* processor =
      static_cast<const sentencepiece::SentencePieceProcessor*>(model);
  const sentencepiece::ImmutableSentencePieceText spt =
      processor->EncodeAsImmutableProto(std::string_view(text, size));
  const size_t n = spt.pieces_size();
  for (size_t i = 0; i < n && i < capacity; ++i) {
    const auto piece = spt.pieces(static_cast<int>(i));
    ids[i] = static_cast<int32_t>(piece.id());
    begins[i] = piece.begin();
    ends[i] = piece.end();
  }
  return n;
}

__attribute__((visibility("default"))) int attnserve_spm_size(
    const void* model) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(model)
      ->GetPieceSize();
}

__attribute__((visibility("default"))) int attnserve_spm_unk_id(
    const void* model) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(model)
      ->unk_id();
}

// The piece of `id`, valid while the model lives.
__attribute__((visibility("default"))) const char* attnserve_spm_piece(
    const void* model, int id, size_t* size) {
  const std::string& piece =
      static_cast<const sentencepiece::SentencePieceProcessor*>(model)
          ->IdToPiece(id);
  *size = piece.size();
  return piece.data();
}

}  // extern "C"
