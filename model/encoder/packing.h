// How one forward pass lays out its tasks' tokens in the encoder's packed
// (rows, H) buffers (model/encoder/encoder.cc).
#ifndef ATTNSERVE_MODEL_ENCODER_PACKING_H_
#define ATTNSERVE_MODEL_ENCODER_PACKING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "model/types.h"

namespace attnserve {

// Where each sequence's tokens sit in the packed (rows, H) buffers. Ordered
// by start layer, then longest first: the tasks that run layer l are then a
// prefix of the order and their tokens a prefix of the rows (so each layer's
// matmuls run on exactly the tokens that need it), and equal lengths sit side
// by side and share one batched attention call. No padding between
// sequences.
struct Packing {
  std::vector<size_t> order;    // task indices (stable)
  std::vector<int64_t> row_of;  // (tasks) first packed row of each task
  int64_t tokens = 0;           // real tokens
  int64_t rows = 0;             // tokens rounded up to a primitive bucket
  // (L) how many tasks of `order` run layer l (start_layer ≤ l), and their
  // tokens: layer l's M.
  std::vector<size_t> active;
  std::vector<int64_t> active_tokens;
};

Packing Pack(absl::Span<const SequenceTask> tasks, int num_layers);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_PACKING_H_
