#include "model/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "common/half.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

using Json = nlohmann::json;

// Bytes per element of the dtypes safetensors defines; 0 = unknown.
size_t DTypeSize(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16")
    return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2")
    return 1;
  return 0;
}

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", path, what));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrFormat("%s: cannot open: %s", path, std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Corrupt(path, "cannot stat");
  }
  const size_t file_size = static_cast<size_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return Corrupt(
        path, absl::StrFormat("truncated: %d bytes, shorter than the 8-byte "
                              "header length",
                              file_size));
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Corrupt(path, "mmap failed");
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile);
  file->path_ = path;
  file->map_ = map;
  file->map_size_ = file_size;
  const uint8_t* bytes = static_cast<const uint8_t*>(map);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > file_size - 8) {
    return Corrupt(path, absl::StrFormat("truncated: header length %d exceeds "
                                         "the %d bytes after it",
                                         header_len, file_size - 8));
  }
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  Json j = Json::parse(header, header + header_len, nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Corrupt(path, "malformed header JSON");
  }
  const size_t data_begin = 8 + header_len;
  const size_t data_size = file_size - data_begin;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string where = absl::StrFormat("tensor \"%s\"", name);
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry["dtype"].is_string() || !entry.contains("shape") ||
        !entry["shape"].is_array() || !entry.contains("data_offsets") ||
        !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      return Corrupt(path, where +
                               ": header entry needs dtype, shape and "
                               "data_offsets [begin, end]");
    }
    TensorView t;
    t.dtype = entry["dtype"].get<std::string>();
    uint64_t elements = 1;
    for (const Json& d : entry["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) {
        return Corrupt(path, where + ": bad shape " + entry["shape"].dump());
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elements > (uint64_t{1} << 40) / dim) {
        return Corrupt(path, where + ": shape too large");
      }
      t.shape.push_back(static_cast<int64_t>(dim));
      elements *= dim;
    }
    const Json& off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return Corrupt(path, where + ": bad data_offsets " + off.dump());
    }
    const uint64_t begin = off[0].get<uint64_t>();
    const uint64_t end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return Corrupt(path,
                     absl::StrFormat("%s: data_offsets [%d, %d] outside the %d "
                                     "data bytes (file truncated?)",
                                     where, begin, end, data_size));
    }
    const size_t elem_size = DTypeSize(t.dtype);
    if (elem_size == 0) {
      return Corrupt(
          path, absl::StrFormat("%s: unknown dtype \"%s\"", where, t.dtype));
    }
    if (end - begin != elements * elem_size) {
      return Corrupt(
          path, absl::StrFormat("%s: %d bytes for shape %s of %s (expected %d)",
                                where, end - begin, entry["shape"].dump(),
                                t.dtype, elements * elem_size));
    }
    t.data = bytes + data_begin + begin;
    t.size = end - begin;
    file->tensors_.emplace(name, std::move(t));
  }
  return file;
}

void SafetensorsFile::Release(const TensorView& t) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(t.data) + t.size) / page * page;
  if (end > begin) {
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::vector<float>> ToFloat32(const TensorView& t,
                                             const std::string& what) {
  std::vector<float> out;
  if (t.dtype == "F32") {
    out.resize(t.size / 4);
    // An empty tensor (a 0 in its shape) has no bytes, and out.data() may be
    // null: memcpy must not see it.
    if (t.size > 0) std::memcpy(out.data(), t.data, t.size);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    out.resize(t.size / 2);
    const bool half = t.dtype == "F16";
    for (size_t i = 0; i < out.size(); ++i) {
      const uint16_t v =
          static_cast<uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8));
      out[i] = half ? HalfToFloat(v) : BFloat16ToFloat(v);
    }
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: dtype %s is not supported (F32, F16 or BF16)", what, t.dtype));
  }
  return out;
}

}  // namespace attnserve
