// Hugging Face's prune_heads at load (EncoderOptions::prune_heads): the flag's
// parser, the (L, H) mask of pruned heads, and cutting one layer's weights.
#ifndef ATTNSERVE_MODEL_ENCODER_PRUNING_H_
#define ATTNSERVE_MODEL_ENCODER_PRUNING_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/checkpoint/config.h"
#include "model/checkpoint/weights.h"

namespace attnserve {

// "2:5,3:0" → {(2, 5), (3, 0)}: the --prune_heads flag. InvalidArgument
// names the part that is not LAYER:HEAD. Ranges are checked by Load.
absl::StatusOr<std::vector<std::pair<int, int>>> ParsePruneHeads(
    absl::string_view text);

// The pruned (layer, head) pairs as an (L, H) mask, empty when none is
// pruned; InvalidArgument names a pair out of range or given twice.
absl::StatusOr<std::vector<uint8_t>> PruneMask(
    const std::vector<std::pair<int, int>>& heads, const ModelConfig& c);

// Keeps the rows of Q, K and V and the columns of the output projection of
// the `kept` heads (head size d, hidden h) in `lw`.
void PruneLayer(const std::vector<int>& kept, int64_t h, int64_t d,
                LayerWeights* lw);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_PRUNING_H_
