// Read-only view of a .safetensors file: u64 LE header length N, N bytes of
// JSON {name: {dtype, shape, data_offsets: [begin, end)}}, then raw LE bytes.
// Every offset is checked against the mapped size at Open, so later reads can
// never leave the mapping.
#ifndef ATTNSERVE_MODEL_CHECKPOINT_SAFETENSORS_H_
#define ATTNSERVE_MODEL_CHECKPOINT_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnserve {

struct TensorView {
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapping; not aligned
  size_t size = 0;                // bytes
};

// Immutable after Open; safe to read from any thread.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // nullptr when absent.
  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // Drops the pages that lie wholly inside `t` from memory (they are re-read
  // from the file if touched again): a loader that has converted a tensor
  // calls this so the mapping does not double the resident size.
  void Release(const TensorView& t) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// Converts an F32, F16 or BF16 tensor to float32 (exactly: every F16/BF16
// value is representable). InvalidArgument for other dtypes.
absl::StatusOr<std::vector<float>> ToFloat32(const TensorView& t,
                                             const std::string& what);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_CHECKPOINT_SAFETENSORS_H_
