// The size of an Encode response, computed before anything runs, so a request
// whose answer would exceed --max_response_bytes is refused up front with a
// message that says which part is large and how to ask for less.
#ifndef ATTNSERVE_SERVER_RESPONSE_SIZE_H_
#define ATTNSERVE_SERVER_RESPONSE_SIZE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "model/checkpoint/config.h"
#include "server/options.h"
#include "server/validate.h"

namespace attnserve {

// The response's payload by part, in bytes. An upper bound of the serialized
// size: tensors exactly, the small messages and varints at their largest.
struct ResponseSize {
  int64_t tokens = 0;  // token_ids and tokens
  int64_t hidden = 0;
  int64_t embedding = 0;
  int64_t maps = 0;
  int64_t stats = 0;
  int64_t rollout = 0;
  int64_t total() const {
    return tokens + hidden + embedding + maps + stats + rollout;
  }
};

ResponseSize SizeOfResponse(const OutputSpec& spec,
                            const std::vector<InputSequence>& inputs,
                            const ModelConfig& config);

// RESOURCE_EXHAUSTED naming the size, its parts, the limit and how to ask for
// less.
absl::Status ResponseTooLarge(const ResponseSize& size, const OutputSpec& spec,
                              const RequestLimits& limits);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_RESPONSE_SIZE_H_
