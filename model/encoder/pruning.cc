#include "model/encoder/pruning.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace attnserve {

// Hugging Face's prune_heads on one layer's weights: keeps the rows of Q, K
// and V and the columns of the output projection of `kept` heads.
void PruneLayer(const std::vector<int>& kept, int64_t h, int64_t d,
                LayerWeights* lw) {
  const int64_t a = int64_t(kept.size()) * d;
  std::vector<float> qkv_w(3 * a * h), qkv_b(3 * a), out_w(h * a);
  for (int64_t part = 0; part < 3; ++part) {
    for (size_t k = 0; k < kept.size(); ++k) {
      const int64_t from = part * h + kept[k] * d;  // first row of the head
      const int64_t to = part * a + int64_t(k) * d;
      std::copy_n(&lw->qkv_weight[from * h], d * h, &qkv_w[to * h]);
      std::copy_n(&lw->qkv_bias[from], d, &qkv_b[to]);
    }
  }
  for (int64_t row = 0; row < h; ++row) {
    for (size_t k = 0; k < kept.size(); ++k) {
      std::copy_n(&lw->out_weight[row * h + kept[k] * d], d,
                  &out_w[row * a + int64_t(k) * d]);
    }
  }
  lw->qkv_weight = std::move(qkv_w);
  lw->qkv_bias = std::move(qkv_b);
  lw->out_weight = std::move(out_w);
}

// The pruned (layer, head) pairs as an (L, H) mask, empty when none is pruned;
// InvalidArgument names a pair out of range or given twice. Nothing is
// allocated for an empty list: this runs before the checkpoint is read, and a
// config.json claiming 10^9 layers made it zero GBs (3.8 GB peak RSS and
// 17 s before the missing tensor was named; soak bad_checkpoints layers_1e9).
absl::StatusOr<std::vector<uint8_t>> PruneMask(
    const std::vector<std::pair<int, int>>& heads, const ModelConfig& c) {
  if (heads.empty()) return std::vector<uint8_t>{};
  std::vector<uint8_t> mask(size_t(c.num_layers) * c.num_heads, 0);
  for (const auto& [layer, head] : heads) {
    if (layer < 0 || layer >= c.num_layers || head < 0 || head >= c.num_heads) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "prune_heads: %d:%d is not a head of this model (layers [0, %d), "
          "heads [0, %d))",
          layer, head, c.num_layers, c.num_heads));
    }
    uint8_t& m = mask[size_t(layer) * c.num_heads + head];
    if (m) {
      return absl::InvalidArgumentError(
          absl::StrFormat("prune_heads: %d:%d is given twice", layer, head));
    }
    m = 1;
  }
  return mask;
}

absl::StatusOr<std::vector<std::pair<int, int>>> ParsePruneHeads(
    absl::string_view text) {
  std::vector<std::pair<int, int>> heads;
  for (absl::string_view part :
       absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    std::vector<absl::string_view> lh = absl::StrSplit(part, ':');
    int layer, head;
    if (lh.size() != 2 || !absl::SimpleAtoi(lh[0], &layer) ||
        !absl::SimpleAtoi(lh[1], &head)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "prune_heads: \"%s\" is not LAYER:HEAD (e.g. 2:5)", part));
    }
    heads.emplace_back(layer, head);
  }
  return heads;
}

}  // namespace attnserve
