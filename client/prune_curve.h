// The pruning curve (Michel et al. 2019, "Are Sixteen Heads Really Better
// than One?", measured per model): mask the k least important heads (by
// RankHeads) for k = 0, step, …, all, and follow the cosine of the pooled
// output against the unmasked one. Also the RankHeads importance grid.
//
// This file draws; commands.cc makes the calls. Plain structs in, text or
// SVG/HTML out: no protobuf, no I/O. Any thread.
#ifndef ATTNSERVE_CLIENT_PRUNE_CURVE_H_
#define ATTNSERVE_CLIENT_PRUNE_CURVE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attnserve::client {

// One step of the curve.
struct CurvePoint {
  int masked = 0;         // k: heads masked
  double kept = 1;        // fraction of the model's heads still on
  double cosine = 1;      // mean over the texts of cos(pooled, pooled at k = 0)
  double min_cosine = 1;  // the lowest text's
};

// One head's RankHeads importance (1 − cos when masked alone).
struct HeadScore {
  int layer = 0;
  int head = 0;
  double importance = 0;
};

// k = 0, step, 2·step, …, and always `heads` last. step ≥ 1.
std::vector<int> CurveSteps(int heads, int step);

// The table attnctl prints: k, fraction kept, cosine (and the lowest text's
// when there are several), then the heads in the order they were masked.
std::string FormatPruneCurve(const std::vector<CurvePoint>& curve,
                             const std::vector<HeadScore>& order, int texts);

// <svg class="curve"> of the curve: x = heads masked (0 … all), y = cosine
// (from min(0, lowest) to 1), one <polyline data-points="N"> and a <circle>
// per point (with a <title> "k = 3: cosine 0.9912").
std::string PruneCurveSvg(const std::vector<CurvePoint>& curve, int heads);

// <svg class="importance"> grid: one row per layer, one cell per head, the
// colour's depth = importance / the largest importance; a pruned (absent)
// head is grey and crossed. Each cell is a <rect data-layer data-head
// data-importance> with a <title>.
std::string ImportanceGridSvg(const std::vector<HeadScore>& scores, int layers,
                              int heads);

// The self-contained page `attnctl prune-curve --html` writes: the curve,
// the grid, and the table. InvalidArgument when the curve is empty.
absl::StatusOr<std::string> RenderPruneCurveHtml(
    const std::string& title, const std::string& subtitle,
    const std::vector<CurvePoint>& curve, const std::vector<HeadScore>& scores,
    int layers, int heads);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_PRUNE_CURVE_H_
