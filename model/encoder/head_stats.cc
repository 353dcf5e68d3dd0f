#include "model/encoder/head_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_format.h"

namespace attnserve {
namespace {

// Checks that `values` holds (blocks, heads, t, t) floats.
absl::Status CheckShape(absl::Span<const float> values, int64_t blocks,
                        int64_t heads, int64_t t, const char* what) {
  if (blocks < 1 || heads < 1 || t < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: dimensions (%d, %d, %d, %d) must be positive",
                        what, blocks, heads, t, t));
  }
  // Dividing instead of multiplying keeps huge dimensions from overflowing.
  const int64_t n = values.size();
  if (n / blocks / heads / t / t != 1 || n % (blocks * heads * t * t) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d values do not form (%d, %d, %d, %d)", what, n,
                        blocks, heads, t, t));
  }
  return absl::OkStatus();
}

// −p ln p with 0·ln 0 = 0 (softmax never gives p < 0; treat it as 0 too).
double NegPLogP(double p) { return p > 0 ? -p * std::log(p) : 0.0; }

}  // namespace

std::vector<int64_t> TokenPositions(absl::Span<const int32_t> token_ids,
                                    int32_t id) {
  std::vector<int64_t> out;
  for (size_t j = 0; j < token_ids.size(); ++j) {
    if (token_ids[j] == id) out.push_back(j);
  }
  return out;
}

absl::StatusOr<std::vector<HeadStats>> ComputeHeadStats(
    absl::Span<const float> probs, int64_t heads, int64_t t,
    absl::Span<const int64_t> sep_positions, int layer) {
  if (absl::Status s = CheckShape(probs, 1, heads, t, "head stats"); !s.ok()) {
    return s;
  }
  // A key listed twice must not count twice.
  std::vector<int64_t> seps(sep_positions.begin(), sep_positions.end());
  std::sort(seps.begin(), seps.end());
  seps.erase(std::unique(seps.begin(), seps.end()), seps.end());
  for (int64_t j : seps) {
    if (j < 0 || j >= t) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "head stats: [SEP] position %d is outside [0, %d)", j, t));
    }
  }

  std::vector<HeadStats> out(heads);
  for (int64_t h = 0; h < heads; ++h) {
    const float* p = &probs[h * t * t];  // (t, t)
    double entropy = 0, max_weight = 0, distance = 0, cls = 0, sep = 0,
           self = 0, prev = 0, next = 0;
    for (int64_t i = 0; i < t; ++i) {
      const float* row = &p[i * t];  // (t) keys of query i
      double row_entropy = 0, row_max = 0, row_distance = 0;
      for (int64_t j = 0; j < t; ++j) {
        const double pij = row[j];
        row_entropy += NegPLogP(pij);
        row_max = std::max(row_max, pij);
        row_distance += pij * std::abs(i - j);
      }
      entropy += row_entropy;
      max_weight += row_max;
      distance += row_distance;
      cls += row[0];
      for (int64_t j : seps) sep += row[j];
      self += row[i];
      if (i >= 1) prev += row[i - 1];
      if (i + 1 < t) next += row[i + 1];
    }
    HeadStats& s = out[h];
    s.layer = layer;
    s.head = h;
    s.entropy = entropy / t;
    s.max_weight = max_weight / t;
    s.mean_distance = distance / t;
    s.cls_weight = cls / t;
    s.sep_weight = sep / t;
    s.self_weight = self / t;
    // T − 1 rows have a previous (next) key; none when T = 1.
    s.prev_weight = t > 1 ? prev / (t - 1) : 0.0;
    s.next_weight = t > 1 ? next / (t - 1) : 0.0;
  }
  return out;
}

double JensenShannon(const float* p, const float* q, int64_t n) {
  // ½ Σ p ln(p/m) + ½ Σ q ln(q/m) with m = (p+q)/2; a term whose own weight is
  // 0 contributes 0, and m > 0 wherever that weight is > 0.
  double js = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double a = p[j] > 0 ? p[j] : 0.0, b = q[j] > 0 ? q[j] : 0.0;
    const double m = 0.5 * (a + b);
    if (a > 0) js += 0.5 * a * std::log(a / m);
    if (b > 0) js += 0.5 * b * std::log(b / m);
  }
  return std::max(js, 0.0);  // rounding may leave −1e-17
}

absl::StatusOr<LayerStats> ComputeLayerStats(absl::Span<const float> probs,
                                             int64_t heads, int64_t t,
                                             int layer) {
  if (absl::Status s = CheckShape(probs, 1, heads, t, "layer stats"); !s.ok()) {
    return s;
  }
  LayerStats out;
  out.layer = layer;
  out.heads = heads;
  out.js_divergence.assign(heads * heads, 0.0);  // (heads, heads)
  double pair_sum = 0;
  for (int64_t a = 0; a < heads; ++a) {
    for (int64_t b = a + 1; b < heads; ++b) {
      double js = 0;
      for (int64_t i = 0; i < t; ++i) {
        js +=
            JensenShannon(&probs[(a * t + i) * t], &probs[(b * t + i) * t], t);
      }
      js /= t;
      out.js_divergence[a * heads + b] = js;
      out.js_divergence[b * heads + a] = js;
      pair_sum += js;
    }
  }
  out.diversity = heads > 1 ? pair_sum / (heads * (heads - 1) / 2) : 0.0;
  return out;
}

absl::StatusOr<SequenceStats> ComputeSequenceStats(
    absl::Span<const float> attention, absl::Span<const int> layers,
    int64_t heads, int64_t t, absl::Span<const int64_t> sep_positions) {
  SequenceStats out;
  if (layers.empty()) {
    if (!attention.empty()) {
      return absl::InvalidArgumentError(
          "sequence stats: attention given for no layers");
    }
    return out;
  }
  const int64_t n_layers = layers.size();
  if (absl::Status s =
          CheckShape(attention, n_layers, heads, t, "sequence stats");
      !s.ok()) {
    return s;
  }
  const int64_t block = heads * t * t;  // (heads, t, t)
  for (int64_t l = 0; l < n_layers; ++l) {
    const absl::Span<const float> probs = attention.subspan(l * block, block);
    auto head_stats =
        ComputeHeadStats(probs, heads, t, sep_positions, layers[l]);
    if (!head_stats.ok()) return head_stats.status();
    out.heads.insert(out.heads.end(), head_stats->begin(), head_stats->end());
    auto layer_stats = ComputeLayerStats(probs, heads, t, layers[l]);
    if (!layer_stats.ok()) return layer_stats.status();
    out.layers.push_back(std::move(*layer_stats));
  }
  return out;
}

absl::StatusOr<std::vector<double>> AttentionRollout(
    absl::Span<const float> attention, int64_t layers, int64_t heads,
    int64_t t) {
  if (absl::Status s = CheckShape(attention, layers, heads, t, "rollout");
      !s.ok()) {
    return s;
  }
  std::vector<double> a(t * t);        // (t, t) A_l of the current layer
  std::vector<double> rollout(t * t);  // (t, t) R_{l−1}, then R_l
  std::vector<double> next(t * t);     // (t, t) A_l · R_{l−1}
  for (int64_t l = 0; l < layers; ++l) {
    // 1. A_l = 0.5·mean over heads + 0.5·I, rows renormalized.
    std::fill(a.begin(), a.end(), 0.0);
    const float* p = &attention[l * heads * t * t];  // (heads, t, t)
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t k = 0; k < t * t; ++k) a[k] += p[h * t * t + k];
    }
    for (int64_t i = 0; i < t; ++i) {
      double* row = &a[i * t];
      double sum = 0;
      for (int64_t j = 0; j < t; ++j) {
        row[j] = 0.5 * row[j] / heads + (i == j ? 0.5 : 0.0);
        sum += row[j];
      }
      for (int64_t j = 0; j < t; ++j) row[j] /= sum;  // sum ≥ 0.5
    }
    if (l == 0) {
      rollout = a;
      continue;
    }
    // 2. R_l = A_l · R_{l−1}, i-k-j order so the inner loop runs along rows.
    std::fill(next.begin(), next.end(), 0.0);
    for (int64_t i = 0; i < t; ++i) {
      double* dst = &next[i * t];
      for (int64_t k = 0; k < t; ++k) {
        const double aik = a[i * t + k];
        const double* src = &rollout[k * t];
        for (int64_t j = 0; j < t; ++j) dst[j] += aik * src[j];
      }
    }
    rollout.swap(next);
  }
  return rollout;
}

absl::StatusOr<std::vector<float>> SelectQueryRows(
    absl::Span<const float> attention, int64_t layers, int64_t heads, int64_t t,
    absl::Span<const int64_t> query_positions) {
  if (absl::Status s =
          CheckShape(attention, layers, heads, t, "query selection");
      !s.ok()) {
    return s;
  }
  for (size_t q = 0; q < query_positions.size(); ++q) {
    if (query_positions[q] < 0 || query_positions[q] >= t) {
      return absl::InvalidArgumentError(
          absl::StrFormat("query_positions[%d] = %d is outside [0, %d)", q,
                          query_positions[q], t));
    }
  }
  const int64_t n_q = query_positions.size();
  std::vector<float> out(layers * heads * n_q * t);  // (layers, heads, Q, t)
  for (int64_t lh = 0; lh < layers * heads; ++lh) {
    for (int64_t q = 0; q < n_q; ++q) {
      const float* src = &attention[(lh * t + query_positions[q]) * t];
      std::copy(src, src + t, &out[(lh * n_q + q) * t]);
    }
  }
  return out;
}

}  // namespace attnserve
