// What the heads of one sequence look at, computed from its attention
// probabilities: per-head statistics, per-layer head diversity (Jensen–Shannon
// divergence between heads), attention rollout and query-row selection.
//
// Inputs are the maps Encoder::Forward returns in SequenceOutput::attention:
// (layers, heads, T, T) softmax probabilities, rows = query i, columns = key j,
// real tokens only (no padding), as computed before any head_mask. Everything
// is accumulated in double. The functions are pure: any thread may call them
// at any time. Sizes that disagree with the spans give InvalidArgument.
//
// Costs per sequence: statistics O(heads·T²) per layer, divergence
// O(heads²·T²) per layer, rollout O(layers·T³) (≈ 1.6·10⁹ multiply-adds for
// 12 layers at T = 512; milliseconds at T = 128).
#ifndef ATTNSERVE_MODEL_ENCODER_HEAD_STATS_H_
#define ATTNSERVE_MODEL_ENCODER_HEAD_STATS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace attnserve {

// One head of one layer, each a mean over the T query rows p_i.
struct HeadStats {
  int layer = 0;
  int head = 0;
  double entropy = 0;        // −Σ_j p_ij ln p_ij, nats (0·ln 0 = 0)
  double max_weight = 0;     // max_j p_ij
  double mean_distance = 0;  // Σ_j p_ij |i − j|, in tokens
  double cls_weight = 0;     // p_i0
  double sep_weight = 0;     // Σ_{j ∈ SEP positions} p_ij; 0 without [SEP]
  double self_weight = 0;    // p_ii
  double prev_weight = 0;    // p_i,i−1 over i ≥ 1; 0 when T = 1
  double next_weight = 0;    // p_i,i+1 over i < T−1; 0 when T = 1
};

// How different the heads of one layer are.
struct LayerStats {
  int layer = 0;
  int heads = 0;
  // (heads, heads) symmetric, zero diagonal: entry (a, b) is the mean over
  // query rows i of JS(p_a,i ‖ p_b,i) in nats, so each lies in [0, ln 2].
  std::vector<double> js_divergence;
  double diversity = 0;  // mean of js_divergence over pairs a < b; 0 for 1 head
};

// Positions j with token_ids[j] == id (e.g. the [SEP] id): the
// `sep_positions` argument below.
std::vector<int64_t> TokenPositions(absl::Span<const int32_t> token_ids,
                                    int32_t id);

// probs: (heads, t, t) of one layer; `layer` only labels the result.
// sep_positions: keys counted by sep_weight, each in [0, t).
// Returns `heads` entries in head order.
absl::StatusOr<std::vector<HeadStats>> ComputeHeadStats(
    absl::Span<const float> probs, int64_t heads, int64_t t,
    absl::Span<const int64_t> sep_positions, int layer = 0);

// probs: (heads, t, t) of one layer; `layer` only labels the result.
absl::StatusOr<LayerStats> ComputeLayerStats(absl::Span<const float> probs,
                                             int64_t heads, int64_t t,
                                             int layer = 0);

// JS(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, natural log, for two
// probability rows of length n. In [0, ln 2]; 0 iff p = q.
double JensenShannon(const float* p, const float* q, int64_t n);

// Everything for one sequence, as the server asks for it.
struct SequenceStats {
  std::vector<HeadStats> heads;    // (layers.size() · heads), layer-major
  std::vector<LayerStats> layers;  // (layers.size())
};

// attention: (layers.size(), heads, t, t), i.e. SequenceOutput::attention of
// a task whose attention_layers were `layers` (they label the results).
absl::StatusOr<SequenceStats> ComputeSequenceStats(
    absl::Span<const float> attention, absl::Span<const int> layers,
    int64_t heads, int64_t t, absl::Span<const int64_t> sep_positions);

// Attention rollout (Abnar & Zuidema 2020). attention: (layers, heads, t, t)
// holding EVERY layer of the model, first layer first (a task must ask for
// all attention_layers). Per layer A_l = 0.5·mean_heads(P_l) + 0.5·I with
// rows renormalized to sum 1; R_0 = A_0, R_l = A_l·R_{l−1}. Returns R_{L−1}
// (t, t): row i = how much each input token flows into position i at the top.
absl::StatusOr<std::vector<double>> AttentionRollout(
    absl::Span<const float> attention, int64_t layers, int64_t heads,
    int64_t t);

// attention: (layers, heads, t, t) → (layers, heads, Q, t) holding the rows
// query_positions[0..Q) in the order given (each in [0, t); repeats allowed).
absl::StatusOr<std::vector<float>> SelectQueryRows(
    absl::Span<const float> attention, int64_t layers, int64_t heads, int64_t t,
    absl::Span<const int64_t> query_positions);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_HEAD_STATS_H_
