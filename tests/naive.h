// The naive twins: obviously correct reference implementations of the
// kernels, in plain loops with double accumulation, and the comparison the
// differential tests judge them by (STYLE.md rule 8). Each twin has the same
// contract as its kernel, so a test runs both on one random input:
//
//   naive::Linear     model/kernels/linear.h     Linear::Run
//   naive::Attention  model/kernels/attention.h  Attention::Run
//   naive::LayerNorm  model/kernels/layer_norm.h LayerNorm::Run
//   naive::Pool       model/encoder/pooling.h    Pool
//   naive::L2Normalize                           L2Normalize
//
// Test-only: nothing in model/, server/ or bench/ may include this. Written
// for clarity, not speed (Attention is O(n·heads·t²·d) in doubles). Header-only
// so every test binary can use it.
#ifndef ATTNSERVE_TESTS_NAIVE_H_
#define ATTNSERVE_TESTS_NAIVE_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "model/types.h"

namespace attnserve::naive {

// ---------------------------------------------------------------- Linear

// y (m, n) = [residual +] act(x · wᵀ + b): erf GELU, tanh GELU (as
// transformers' gelu_new), ReLU or none.
// x: (m, k); w: (n, k) row-major, as PyTorch's Linear stores it; b: (n);
// residual: (m, n), or null for none.
inline std::vector<float> Linear(int64_t m, int64_t n, int64_t k,
                                 const float* x, const float* w, const float* b,
                                 const float* residual, Activation act) {
  std::vector<float> y(m * n);  // (m, n)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = b[j];
      for (int64_t c = 0; c < k; ++c)
        acc += double{x[i * k + c]} * w[j * k + c];
      if (act == Activation::kGeluErf) {
        acc = 0.5 * acc * (1 + std::erf(acc / std::sqrt(2.0)));
      } else if (act == Activation::kGeluTanh) {
        const double kPi = 3.14159265358979323846;
        acc = 0.5 * acc *
              (1 + std::tanh(std::sqrt(2.0 / kPi) *
                             (acc + 0.044715 * acc * acc * acc)));
      } else if (act == Activation::kRelu) {
        acc = std::max(acc, 0.0);
      }
      if (residual != nullptr) acc += residual[i * n + j];
      y[i * n + j] = static_cast<float>(acc);
    }
  }
  return y;
}

// ---------------------------------------------------------------- Attention

// n sequences of t tokens, stored one after another; d = head_size.
// qkv:   (n, t, 3, heads, d) fused projections
// probs: (n, heads, t, t) out: softmax(Q·Kᵀ/√d) per head
// out:   (n, t, heads·d) out: probs·V, heads merged
inline void Attention(int64_t n, int64_t t, int heads, int head_size,
                      const float* qkv, float* probs, float* out) {
  const int64_t d = head_size, hd = heads * d;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> row(t);  // (t) one query's scores, then its weights
  for (int64_t s = 0; s < n; ++s) {
    const float* x = qkv + s * t * 3 * hd;  // (t, 3, heads, d)
    for (int h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < t; ++i) {
        double max = -INFINITY;
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) {
            dot += double{x[i * 3 * hd + h * d + c]} *
                   x[j * 3 * hd + hd + h * d + c];
          }
          row[j] = dot * scale;
          max = std::max(max, row[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < t; ++j) sum += row[j] = std::exp(row[j] - max);
        float* p = probs + ((s * heads + h) * t + i) * t;
        for (int64_t j = 0; j < t; ++j) p[j] = static_cast<float>(row[j] / sum);
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < t; ++j) {
            acc += row[j] / sum * x[j * 3 * hd + 2 * hd + h * d + c];
          }
          out[(s * t + i) * hd + h * d + c] = static_cast<float>(acc);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- LayerNorm

// y (rows, width): each row r of x (rows, width) becomes
// γ · (x[r] − mean) / √(var + eps) + β, with the biased variance
// var = mean((x[r] − mean)²), as torch.nn.LayerNorm; gamma, beta: (width).
// Two passes in double, so a large mean does not cancel the variance.
inline std::vector<float> LayerNorm(int64_t rows, int64_t width, const float* x,
                                    const float* gamma, const float* beta,
                                    float eps) {
  std::vector<float> y(rows * width);  // (rows, width)
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * width;  // (width)
    double mean = 0;
    for (int64_t c = 0; c < width; ++c) mean += in[c];
    mean /= width;
    double var = 0;
    for (int64_t c = 0; c < width; ++c) var += (in[c] - mean) * (in[c] - mean);
    var /= width;
    const double inv = 1.0 / std::sqrt(var + double{eps});
    for (int64_t c = 0; c < width; ++c) {
      y[r * width + c] =
          static_cast<float>(gamma[c] * (in[c] - mean) * inv + beta[c]);
    }
  }
  return y;
}

// ---------------------------------------------------------------- Pooling

// hidden: (t, h) last hidden states of one sequence. Returns (h): kCls row 0;
// kMean the mean over the t rows; kPooler tanh(w · hidden[0] + b) with w
// (h, h) row-major and b (h); kNone nothing.
inline std::vector<float> Pool(PoolingMode mode, const float* hidden, int64_t t,
                               int64_t h, const std::vector<float>& w,
                               const std::vector<float>& b) {
  std::vector<float> out(h);  // (h)
  switch (mode) {
    case PoolingMode::kNone:
      return {};
    case PoolingMode::kCls:
      for (int64_t c = 0; c < h; ++c) out[c] = hidden[c];
      break;
    case PoolingMode::kMean:
      for (int64_t c = 0; c < h; ++c) {
        double sum = 0;
        for (int64_t r = 0; r < t; ++r) sum += hidden[r * h + c];
        out[c] = static_cast<float>(sum / t);
      }
      break;
    case PoolingMode::kPooler:
      for (int64_t j = 0; j < h; ++j) {
        double acc = b[j];
        for (int64_t c = 0; c < h; ++c) acc += double{w[j * h + c]} * hidden[c];
        out[j] = static_cast<float>(std::tanh(acc));
      }
      break;
  }
  return out;
}

// v / ‖v‖₂, or v itself when ‖v‖ = 0. Squares in long double: no float's
// square (≤ 1.2e77, ≥ 2e-90) leaves its range.
inline std::vector<float> L2Normalize(const std::vector<float>& v) {
  long double sum = 0;
  for (float x : v) sum += static_cast<long double>(x) * x;
  if (sum == 0) return v;
  const long double norm = std::sqrt(sum);
  std::vector<float> out(v.size());  // (v.size())
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = static_cast<float>(v[i] / norm);
  }
  return out;
}

// ---------------------------------------------------------------- comparison

// max |got[i] − want[i]|, for reporting: NaN when either side holds a NaN
// (or the same infinity), +∞ when the sizes differ or both are empty. Judge
// with AllNear.
inline double MaxAbsError(const std::vector<float>& got,
                          const std::vector<float>& want) {
  if (got.size() != want.size() || got.empty()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double{got[i]} - double{want[i]});
    if (std::isnan(err)) return err;
    worst = std::max(worst, err);
  }
  return worst;
}

// Passes when `got` and `want` have the same, non-zero size and every
// |got[i] − want[i]| ≤ tol. It can fail: a size mismatch fails, and so does a
// NaN or infinity on either side — the test is !(err <= tol), which NaN never
// passes (std::max(worst, NaN) would keep `worst` and pass). The message
// names the first bad element and the largest error.
inline ::testing::AssertionResult AllNear(const std::vector<float>& got,
                                          const std::vector<float>& want,
                                          double tol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "got " << got.size() << " values, want " << want.size();
  }
  if (got.empty()) {
    return ::testing::AssertionFailure() << "nothing to compare (both empty)";
  }
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double{got[i]} - double{want[i]});
    const bool ok =
        std::isfinite(got[i]) && std::isfinite(want[i]) && err <= tol;
    if (!ok && bad++ == 0) first_bad = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " values off by more than " << tol
         << "; first at [" << first_bad << "]: got " << got[first_bad]
         << ", want " << want[first_bad] << "; largest error "
         << MaxAbsError(got, want);
}

}  // namespace attnserve::naive

#endif  // ATTNSERVE_TESTS_NAIVE_H_
