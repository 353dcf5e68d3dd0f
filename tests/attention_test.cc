// Attention (oneDNN batched matmuls + softmax) against naive::Attention, the
// double-precision twin in tests/naive.h, on random shapes: one sequence and
// groups, T=1, one head, head size 4, up to the largest T (512).
#include "model/kernels/attention.h"

#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernels/bf16.h"
#include "model/kernels/cpu.h"
#include "tests/naive.h"

namespace attnserve {
namespace {

struct Shape {
  int64_t n, t;
  int heads, head_size;
};

// "n2_t5_heads3_d4": the test's name and how a failure prints the shape.
std::string ShapeName(const Shape& s) {
  return "n" + std::to_string(s.n) + "_t" + std::to_string(s.t) + "_heads" +
         std::to_string(s.heads) + "_d" + std::to_string(s.head_size);
}

void PrintTo(const Shape& s, std::ostream* os) { *os << ShapeName(s); }

class AttentionTest : public ::testing::TestWithParam<Shape> {};

// Q, K and V as Attention reads them, (tokens, hd) each, out of the fused
// (tokens, 3, hd) rows naive::Attention reads; `convert` maps each value
// (to bf16 for the bf16 core).
template <typename T, typename Convert>
std::vector<std::vector<T>> SplitQkv(const std::vector<float>& fused,
                                     int64_t hd, Convert convert) {
  const int64_t tokens = fused.size() / (3 * hd);
  std::vector<std::vector<T>> parts(3, std::vector<T>(tokens * hd));
  for (int64_t r = 0; r < tokens; ++r) {
    for (int part = 0; part < 3; ++part) {
      for (int64_t c = 0; c < hd; ++c) {
        parts[part][r * hd + c] = convert(fused[(r * 3 + part) * hd + c]);
      }
    }
  }
  return parts;
}

// Attention::Run (f32) on the fused layout.
absl::Status RunFused(Attention& attention, int64_t n, int64_t t, int64_t hd,
                      const std::vector<float>& fused, float* probs,
                      float* out) {
  const auto qkv = SplitQkv<float>(fused, hd, [](float f) { return f; });
  return attention.Run(n, t, qkv[0].data(), qkv[1].data(), qkv[2].data(), probs,
                       out);
}

// One shape's inputs, outputs to fill, and the twin's answer.
struct Case {
  std::vector<float> qkv;         // (n, t, 3, heads, d)
  std::vector<float> probs, out;  // (n, heads, t, t), (n, t, heads·d)
  std::vector<float> want_probs, want_out;
};

Case MakeCase(const Shape& s) {
  const int64_t hd = int64_t{s.heads} * s.head_size;
  std::mt19937 rng(s.n * 1000 + s.t * 10 + s.heads);
  // Scaled so scores span a few units: softmax is neither flat nor one-hot.
  std::normal_distribution<float> normal(0.f, 1.5f);
  Case c;
  c.qkv.resize(s.n * s.t * 3 * hd);
  for (float& v : c.qkv) v = normal(rng);
  c.probs.resize(s.n * s.heads * s.t * s.t);
  c.out.resize(s.n * s.t * hd);
  c.want_probs.resize(c.probs.size());
  c.want_out.resize(c.out.size());
  naive::Attention(s.n, s.t, s.heads, s.head_size, c.qkv.data(),
                   c.want_probs.data(), c.want_out.data());
  return c;
}

TEST_P(AttentionTest, MatchesNaiveTwin) {
  const Shape s = GetParam();
  Case c = MakeCase(s);
  DnnlContext ctx;
  Attention attention(&ctx, s.heads, s.head_size);
  ASSERT_TRUE(RunFused(attention, s.n, s.t, int64_t{s.heads} * s.head_size,
                       c.qkv, c.probs.data(), c.out.data())
                  .ok());
  ctx.stream.wait();
  EXPECT_TRUE(naive::AllNear(c.probs, c.want_probs, 1e-5)) << "probs";
  EXPECT_TRUE(naive::AllNear(c.out, c.want_out, 1e-4)) << "context";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    ::testing::Values(Shape{1, 1, 1, 4}, Shape{1, 1, 12, 64}, Shape{1, 7, 1, 4},
                      Shape{2, 5, 3, 4}, Shape{4, 16, 4, 8},
                      Shape{8, 33, 2, 16}, Shape{1, 128, 12, 64},
                      Shape{2, 100, 1, 256}, Shape{1, 512, 2, 32}),
    [](const ::testing::TestParamInfo<Shape>& info) {
      return ShapeName(info.param);
    });

// bf16 Q·Kᵀ and P·V (EncoderOptions::bf16_attention) against the same twin.
// Q, K, V, the probabilities and the context rounded to 8 mantissa bits,
// with scores of a few units: measured on these shapes probs ≤ 5.7e-3 and
// context ≤ 2.9e-2; the bounds are about 10× that.
class AttentionBf16Test : public ::testing::TestWithParam<Shape> {};

TEST_P(AttentionBf16Test, MatchesNaiveTwinWithinBf16Rounding) {
  if (absl::Status s = CheckPrecisionSupported(Precision::kBFloat16); !s.ok()) {
    GTEST_SKIP() << s;
  }
  const Shape s = GetParam();
  Case c = MakeCase(s);
  DnnlContext ctx;
  Attention attention(&ctx, s.heads, s.head_size, /*bf16=*/true);
  ASSERT_TRUE(attention.bf16());
  // QKV in and the context out in bf16, as the encoder's bf16 linear layers
  // write and read them.
  const auto qkv = SplitQkv<bf16_t>(c.qkv, int64_t{s.heads} * s.head_size,
                                    [](float f) { return ToBf16(f); });
  std::vector<bf16_t> out(c.out.size());
  // Twice: the second call reuses the kernel and the grown scratch.
  for (int call = 0; call < 2; ++call) {
    ASSERT_TRUE(attention
                    .Run(s.n, s.t, qkv[0].data(), qkv[1].data(), qkv[2].data(),
                         c.probs.data(), out.data())
                    .ok());
    ctx.stream.wait();
  }
  for (size_t i = 0; i < out.size(); ++i) c.out[i] = FromBf16(out[i]);
  const double probs_err = naive::MaxAbsError(c.probs, c.want_probs);
  const double out_err = naive::MaxAbsError(c.out, c.want_out);
  std::printf("[ bf16 attention ] %s: probs %.2g, context %.2g\n",
              ShapeName(s).c_str(), probs_err, out_err);
  EXPECT_LE(probs_err, 5e-2) << "probs";
  EXPECT_LE(out_err, 0.3) << "context";
  // Rows of probabilities still sum to 1: softmax ran in f32.
  for (int64_t r = 0; r < s.n * s.heads * s.t; ++r) {
    double sum = 0;
    for (int64_t col = 0; col < s.t; ++col) sum += c.probs[r * s.t + col];
    ASSERT_NEAR(sum, 1.0, 1e-5) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionBf16Test,
                         ::testing::Values(Shape{1, 1, 1, 4}, Shape{2, 5, 3, 4},
                                           Shape{8, 33, 2, 16},
                                           Shape{1, 128, 12, 64},
                                           Shape{1, 512, 2, 32}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return ShapeName(info.param);
                         });

// Q·Kᵀ and P·V read layouts oneDNN runs on brgemm (AMX tiles where
// present), not gemm:jit as it did for strided views of a fused QKV buffer.
// In oneDNN 2.6 f32 brgemm needs AVX-512, bf16 brgemm AVX-512 BF16 or AMX
// (below that bf16 runs gemm:jit, emulated). Neither precision may fall to
// the reference kernel.
TEST(AttentionTest, MatmulsRunOnRealKernels) {
  const std::string isa = EffectiveCpuIsa();
  for (bool bf16 : {false, true}) {
    if (bf16 && !CheckPrecisionSupported(Precision::kBFloat16).ok()) continue;
    DnnlContext ctx;
    Attention attention(&ctx, 12, 64, bf16);
    auto names = attention.ImplNames(8, 128);
    ASSERT_TRUE(names.ok()) << names.status();
    std::printf("[ attention kernels ] %s, %s: %s\n", isa.c_str(),
                bf16 ? "bf16" : "f32", names->c_str());
    EXPECT_EQ(names->find("ref"), std::string::npos) << *names;
    const bool brgemm = bf16 ? isa.find("bf16") != std::string::npos ||
                                   isa.find("amx") != std::string::npos
                             : isa.rfind("avx512_core", 0) == 0;
    if (brgemm) {
      EXPECT_EQ(names->rfind("brg:", 0), 0u) << *names;
      EXPECT_NE(names->find(" / brg:"), std::string::npos) << *names;
    }
  }
}

// A second call with the same shape reuses the primitives and gives the same
// answer (the kernel cache must not alias buffers between calls).
TEST(AttentionTest, CachedKernelIsReentrant) {
  const int heads = 2, d = 4, t = 6;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  DnnlContext ctx;
  Attention attention(&ctx, heads, d);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> qkv(t * 3 * heads * d);
    for (float& v : qkv) v = normal(rng);
    std::vector<float> probs(heads * t * t), out(t * heads * d);
    std::vector<float> wp(probs.size()), wo(out.size());
    ASSERT_TRUE(
        RunFused(attention, 1, t, heads * d, qkv, probs.data(), out.data())
            .ok());
    ctx.stream.wait();
    naive::Attention(1, t, heads, d, qkv.data(), wp.data(), wo.data());
    ASSERT_TRUE(naive::AllNear(out, wo, 1e-5)) << "round " << round;
  }
}

// Many (n, t) shapes, as a long-running server meets them: the cache keeps
// at most kMaxKernels, and a shape evicted long ago is made again and still
// right.
TEST(AttentionTest, KernelCacheIsBoundedAndEvictedShapesComeBack) {
  const int heads = 1, d = 4;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  DnnlContext ctx;
  Attention attention(&ctx, heads, d);
  auto run_and_check = [&](int64_t n, int64_t t) {
    std::vector<float> qkv(n * t * 3 * heads * d);
    for (float& v : qkv) v = normal(rng);
    std::vector<float> probs(n * heads * t * t), out(n * t * heads * d);
    std::vector<float> wp(probs.size()), wo(out.size());
    ASSERT_TRUE(
        RunFused(attention, n, t, heads * d, qkv, probs.data(), out.data())
            .ok());
    ctx.stream.wait();
    naive::Attention(n, t, heads, d, qkv.data(), wp.data(), wo.data());
    ASSERT_TRUE(naive::AllNear(out, wo, 1e-5)) << "n=" << n << " t=" << t;
  };
  int shapes = 0;
  for (int64_t t = 1; t <= 20; ++t) {
    for (int64_t n = 1; n <= 15; ++n, ++shapes) {
      run_and_check(n, t);
      ASSERT_LE(attention.cached_kernels(), Attention::kMaxKernels);
    }
  }
  ASSERT_GT(shapes, static_cast<int>(Attention::kMaxKernels));
  EXPECT_EQ(attention.cached_kernels(), Attention::kMaxKernels);
  run_and_check(1, 1);  // the first shape, evicted since
}

}  // namespace
}  // namespace attnserve
