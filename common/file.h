// Reading small files whole (config.json, vocab.txt, tokenizer.json, …).
// model.safetensors is mapped instead; see model/checkpoint/safetensors.h.
#ifndef ATTNSERVE_COMMON_FILE_H_
#define ATTNSERVE_COMMON_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace attnserve {

// The file's bytes. NotFound "PATH: cannot open: REASON" when it cannot be
// opened, DataLoss "PATH: cannot read: REASON" when reading fails.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace attnserve

#endif  // ATTNSERVE_COMMON_FILE_H_
