// Linear (oneDNN matmul + bias + GELU + residual post-ops) against a naive
// double-precision twin on random shapes, including M = 1 and row counts that
// fall inside and across RowBucket boundaries.
#include "model/kernels/linear.h"

#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "model/kernels/cpu.h"
#include "tests/naive.h"

namespace attnserve {
namespace {

struct Shape {
  int64_t m, n, k;
  Activation act;
  bool residual;
};

constexpr Activation kNone = Activation::kNone;
constexpr Activation kGelu = Activation::kGeluErf;
constexpr Activation kGeluTanh = Activation::kGeluTanh;
constexpr Activation kRelu = Activation::kRelu;

const char* ActName(Activation a) {
  switch (a) {
    case Activation::kNone:
      return "";
    case Activation::kGeluErf:
      return "_gelu";
    case Activation::kGeluTanh:
      return "_gelutanh";
    case Activation::kRelu:
      return "_relu";
  }
  return "";
}

// "m3_n48_k16_gelu": the test's name and how a failure prints the shape.
std::string ShapeName(const Shape& s) {
  return "m" + std::to_string(s.m) + "_n" + std::to_string(s.n) + "_k" +
         std::to_string(s.k) + ActName(s.act) + (s.residual ? "_residual" : "");
}

void PrintTo(const Shape& s, std::ostream* os) { *os << ShapeName(s); }

// naive::Linear for `s`: (m, n) from x (≥ m rows of k), w (n, k), b (n) and,
// when s.residual, y0 (≥ m rows of n).
std::vector<float> Naive(const Shape& s, const std::vector<float>& x,
                         const std::vector<float>& w,
                         const std::vector<float>& b,
                         const std::vector<float>& y0) {
  return naive::Linear(s.m, s.n, s.k, x.data(), w.data(), b.data(),
                       s.residual ? y0.data() : nullptr, s.act);
}

// The first m rows of a (RowBucket(m), n) buffer; the rest is scratch.
std::vector<float> FirstRows(const std::vector<float>& y, int64_t m,
                             int64_t n) {
  return std::vector<float>(y.begin(), y.begin() + m * n);
}

std::vector<float> Random(size_t n, float scale, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(*rng);
  return v;
}

class LinearTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LinearTest, MatchesNaiveTwin) {
  const Shape s = GetParam();
  std::mt19937 rng(s.m * 131 + s.n * 7 + s.k);
  DnnlContext ctx;
  const auto w = Random(s.n * s.k, 1.f / std::sqrt(float(s.k)), &rng);
  const auto b = Random(s.n, 0.5f, &rng);
  auto linear =
      Linear::Create(&ctx, w, b, s.n, s.k, LinearSpec{s.act, s.residual});
  ASSERT_TRUE(linear.ok()) << linear.status();
  const int64_t rows = RowBucket(s.m);
  ASSERT_GE(rows, s.m);
  auto x = Random(rows * s.k, 1.f, &rng);
  auto y = Random(rows * s.n, 1.f, &rng);
  const std::vector<float> y0 = y;
  ASSERT_TRUE((*linear)->Run(s.m, x.data(), y.data()).ok());
  ctx.stream.wait();
  // fp32 accumulation over k ≤ 3072 terms of size ≤ 1/√k: errors ~1e-6.
  EXPECT_TRUE(
      naive::AllNear(FirstRows(y, s.m, s.n), Naive(s, x, w, b, y0), 2e-5));
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearTest,
                         ::testing::Values(Shape{1, 1, 1, kNone, false},
                                           Shape{1, 96, 32, kNone, false},
                                           Shape{3, 48, 16, kGelu, false},
                                           Shape{17, 32, 64, kNone, true},
                                           Shape{64, 64, 32, kGelu, false},
                                           Shape{5, 40, 24, kGeluTanh, false},
                                           Shape{33, 48, 20, kRelu, true},
                                           Shape{100, 33, 17, kNone, true},
                                           Shape{257, 128, 96, kGelu, false},
                                           Shape{513, 64, 64, kNone, true},
                                           Shape{128, 3072, 768, kGelu, false},
                                           Shape{128, 768, 3072, kNone, true}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return ShapeName(info.param);
                         });

TEST(LinearTest, ManyRowCountsReuseOnePackedCopy) {
  std::mt19937 rng(1);
  DnnlContext ctx;
  const int64_t n = 64, k = 48;
  const auto w = Random(n * k, 0.2f, &rng);
  const auto b = Random(n, 0.2f, &rng);
  auto linear = Linear::Create(&ctx, w, b, n, k, LinearSpec{});
  ASSERT_TRUE(linear.ok());
  const size_t bytes = (*linear)->weight_bytes();
  for (int64_t m : {1, 5, 16, 17, 100, 300, 600}) {
    std::vector<float> x = Random(RowBucket(m) * k, 1.f, &rng);
    std::vector<float> y(RowBucket(m) * n);
    ASSERT_TRUE((*linear)->Run(m, x.data(), y.data()).ok());
    ASSERT_TRUE(naive::AllNear(
        FirstRows(y, m, n), Naive({m, n, k, kNone, false}, x, w, b, y), 2e-5))
        << "m=" << m;
  }
  // Weights are packed once; other row counts reuse the layout.
  EXPECT_EQ((*linear)->weight_bytes(), bytes);
}

// bf16 and int8 quantize the activations into scratch. A long-running server
// meets many row buckets; the scratch must be one buffer per shape sized for
// the largest run, not one per bucket (which grew a one-layer BERT-base-wide
// model to 1.5 GB after passes of 576..4096 tokens in bf16, 0.9 GB in int8).
TEST(LinearTest, ActivationScratchIsOneBufferForAllRowCounts) {
  for (Precision p : {Precision::kBFloat16, Precision::kInt8}) {
    if (!CheckPrecisionSupported(p).ok()) continue;  // bf16 below AVX-512
    std::mt19937 rng(2);
    DnnlContext ctx;
    const int64_t n = 32, k = 48;
    const auto w = Random(n * k, 0.2f, &rng);
    const auto b = Random(n, 0.2f, &rng);
    auto kernels = std::make_shared<LinearKernels>(
        &ctx, n, k, LinearSpec{Activation::kNone, false, p});
    auto linear = Linear::Create(&ctx, w, b, n, k, kernels->spec(), kernels);
    ASSERT_TRUE(linear.ok()) << linear.status();
    int64_t largest = 0;
    for (int64_t m : {1, 7, 16, 40, 300, 1000, 200, 3}) {
      std::vector<float> x = Random(RowBucket(m) * k, 1.f, &rng);
      std::vector<float> y(RowBucket(m) * n);
      ASSERT_TRUE((*linear)->Run(m, x.data(), y.data()).ok());
      largest = std::max(largest, RowBucket(m));
    }
    const LinearKernels::Scratch& s = kernels->scratch();
    const size_t held =
        s.bf16.size() * 2 + s.u8.size() + s.row_scales.size() * 4;
    const size_t per_row = p == Precision::kBFloat16 ? 2 * k : k + 4;
    EXPECT_EQ(held, static_cast<size_t>(largest) * per_row) << PrecisionName(p);
  }
}

// The benchmarks record these names per precision: each must be a name, and
// fp32's a real kernel (a matmul through "ref" is a 20× regression; bf16 and
// int8 may fall back to it on CPUs without AVX-512, so only fp32 is held to
// it).
TEST(LinearTest, ImplNameNamesTheKernelOfEachPrecision) {
  DnnlContext ctx;
  for (Precision p :
       {Precision::kFloat32, Precision::kBFloat16, Precision::kInt8}) {
    if (!CheckPrecisionSupported(p).ok()) continue;  // bf16 below AVX-512
    LinearKernels kernels(&ctx, 96, 64,
                          LinearSpec{Activation::kGeluErf, false, p});
    auto name = kernels.ImplName(RowBucket(1024));
    ASSERT_TRUE(name.ok()) << name.status();
    EXPECT_FALSE(name->empty()) << PrecisionName(p);
    if (p == Precision::kFloat32) {
      EXPECT_EQ(name->find("ref"), std::string::npos) << *name;
    }
  }
}

// Reduced precisions against the same twin, by normalized mean squared error
// (ggml's NMSE): bf16 rounds both operands to 8 mantissa bits; int8 quantizes
// weights per output channel and activations per row (token).
struct PrecisionCase {
  Precision precision;
  double max_nmse;
};

void PrintTo(const PrecisionCase& pc, std::ostream* os) {
  *os << PrecisionName(pc.precision) << " max_nmse=" << pc.max_nmse;
}

class LinearPrecisionTest : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(LinearPrecisionTest, MatchesNaiveTwinWithinNmse) {
  if (absl::Status supported = CheckPrecisionSupported(GetParam().precision);
      !supported.ok()) {
    GTEST_SKIP() << supported;
  }
  const PrecisionCase pc = GetParam();
  for (const Shape& s :
       {Shape{1, 64, 32, kNone, false}, Shape{13, 96, 48, kGelu, false},
        Shape{40, 64, 128, kNone, true}, Shape{128, 768, 768, kGelu, true}}) {
    std::mt19937 rng(s.m + s.n + s.k);
    DnnlContext ctx;
    const auto w = Random(s.n * s.k, 1.f / std::sqrt(float(s.k)), &rng);
    const auto b = Random(s.n, 0.5f, &rng);
    auto linear = Linear::Create(&ctx, w, b, s.n, s.k,
                                 LinearSpec{s.act, s.residual, pc.precision});
    ASSERT_TRUE(linear.ok()) << linear.status();
    auto x = Random(RowBucket(s.m) * s.k, 1.f, &rng);
    auto y = Random(RowBucket(s.m) * s.n, 1.f, &rng);
    const auto want = Naive(s, x, w, b, y);
    ASSERT_TRUE((*linear)->Run(s.m, x.data(), y.data()).ok());
    ctx.stream.wait();
    double err = 0, ref = 0;
    for (int64_t i = 0; i < s.m * s.n; ++i) {
      err += (double{y[i]} - want[i]) * (double{y[i]} - want[i]);
      ref += double{want[i]} * want[i];
    }
    EXPECT_LE(err / ref, pc.max_nmse)
        << PrecisionName(pc.precision) << " m=" << s.m << " n=" << s.n;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Precisions, LinearPrecisionTest,
    ::testing::Values(PrecisionCase{Precision::kBFloat16, 1e-4},
                      PrecisionCase{Precision::kInt8, 1e-3}),
    [](const ::testing::TestParamInfo<PrecisionCase>& info) {
      return std::string(PrecisionName(info.param.precision));  // bf16, int8
    });

// bf16 activations between kernels (LinearSpec::bf16_src / bf16_dst): given
// x already rounded to bf16, the result is bit-identical to the f32-input
// path (which rounds x itself, to nearest even); a bf16 output is the f32
// output rounded, within one bf16 ulp (oneDNN converts at the store; the
// two kernels may block the f32 sums differently).
TEST(LinearTest, Bf16ActivationsMatchTheF32Path) {
  if (absl::Status s = CheckPrecisionSupported(Precision::kBFloat16); !s.ok()) {
    GTEST_SKIP() << s;
  }
  for (const Shape& s :
       {Shape{1, 48, 32, kGelu, false}, Shape{13, 96, 48, kGelu, false},
        Shape{200, 768, 256, kNone, false}}) {
    SCOPED_TRACE(ShapeName(s));
    std::mt19937 rng(s.m * 7 + s.n);
    DnnlContext ctx;
    const auto w = Random(s.n * s.k, 1.f / std::sqrt(float(s.k)), &rng);
    const auto b = Random(s.n, 0.5f, &rng);
    const int64_t rows = RowBucket(s.m);
    auto make = [&](bool src16, bool dst16) {
      auto linear = Linear::Create(
          &ctx, w, b, s.n, s.k,
          LinearSpec{s.act, false, Precision::kBFloat16, src16, dst16});
      EXPECT_TRUE(linear.ok()) << linear.status();
      return std::move(*linear);
    };
    const auto x = Random(rows * s.k, 1.f, &rng);  // (rows, K)
    std::vector<bf16_t> x16(x.size());
    for (size_t i = 0; i < x.size(); ++i) x16[i] = ToBf16(x[i]);

    std::vector<float> want(rows * s.n), got(rows * s.n);  // (rows, N)
    ASSERT_TRUE(make(false, false)->Run(s.m, x.data(), want.data()).ok());
    ASSERT_TRUE(make(true, false)->Run(s.m, x16.data(), got.data()).ok());
    ctx.stream.wait();
    for (int64_t i = 0; i < s.m * s.n; ++i) ASSERT_EQ(got[i], want[i]) << i;

    std::vector<bf16_t> y16(rows * s.n);  // (rows, N)
    ASSERT_TRUE(make(false, true)->Run(s.m, x.data(), y16.data()).ok());
    ASSERT_TRUE(make(true, true)->Run(s.m, x16.data(), got.data()).code() ==
                absl::StatusCode::kInternal)
        << "a bf16 → bf16 layer run with an f32 output";
    ctx.stream.wait();
    for (int64_t i = 0; i < s.m * s.n; ++i) {
      const float rounded = FromBf16(ToBf16(want[i]));
      const float ulp = std::fabs(rounded) * (1.f / 128);
      ASSERT_LE(std::fabs(FromBf16(y16[i]) - rounded), ulp) << i;
    }
  }
}

// Query, key and value: three layers sharing kernels on one x. RunSameInput
// converts (bf16) or quantizes (int8) x once and gives each layer the bits
// its own Run gives; layers of other kernels are refused.
TEST(LinearTest, RunSameInputMatchesSeparateRuns) {
  for (Precision p :
       {Precision::kFloat32, Precision::kBFloat16, Precision::kInt8}) {
    if (!CheckPrecisionSupported(p).ok()) continue;
    SCOPED_TRACE(PrecisionName(p));
    const int64_t m = 37, n = 48, k = 64, rows = RowBucket(m);
    std::mt19937 rng(5);
    DnnlContext ctx;
    auto kernels = std::make_shared<LinearKernels>(&ctx, n, k,
                                                   LinearSpec{kNone, false, p});
    std::vector<std::unique_ptr<Linear>> layers;
    for (int i = 0; i < 3; ++i) {
      auto layer =
          Linear::Create(&ctx, Random(n * k, 0.1f, &rng), Random(n, 0.5f, &rng),
                         n, k, kernels->spec(), kernels);
      ASSERT_TRUE(layer.ok()) << layer.status();
      layers.push_back(std::move(*layer));
    }
    const auto x = Random(rows * k, 1.f, &rng);  // (rows, K)
    std::vector<std::vector<float>> want(3, std::vector<float>(rows * n));
    std::vector<std::vector<float>> got = want;  // 3 × (rows, N)
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(layers[i]->Run(m, x.data(), want[i].data()).ok());
    }
    Linear* const shared[] = {layers[0].get(), layers[1].get(),
                              layers[2].get()};
    float* const out[] = {got[0].data(), got[1].data(), got[2].data()};
    ASSERT_TRUE(Linear::RunSameInput(m, x.data(), shared, out).ok());
    ctx.stream.wait();
    for (int i = 0; i < 3; ++i) {
      for (int64_t e = 0; e < m * n; ++e) {
        ASSERT_EQ(got[i][e], want[i][e]) << "layer " << i << " at " << e;
      }
    }
    auto other = Linear::Create(&ctx, Random(n * k, 0.1f, &rng),
                                Random(n, 0.5f, &rng), n, k, kernels->spec());
    ASSERT_TRUE(other.ok());
    Linear* const mixed[] = {layers[0].get(), other->get()};
    float* const two[] = {got[0].data(), got[1].data()};
    EXPECT_FALSE(Linear::RunSameInput(m, x.data(), mixed, two).ok());
  }
}

TEST(LinearTest, RefusesBf16ActivationsItCannotHonour) {
  DnnlContext ctx;
  const std::vector<float> w(8), b(2);
  LinearSpec fp32_src{kNone, false, Precision::kFloat32, true, false};
  EXPECT_FALSE(Linear::Create(&ctx, w, b, 2, 4, fp32_src).ok());
  LinearSpec residual{kNone, true, Precision::kBFloat16, false, true};
  auto linear = Linear::Create(&ctx, w, b, 2, 4, residual);
  ASSERT_FALSE(linear.ok());
  EXPECT_NE(linear.status().message().find("residual"), std::string::npos);
}

TEST(LinearTest, RefusesMismatchedWeights) {
  DnnlContext ctx;
  auto linear = Linear::Create(&ctx, std::vector<float>(10),
                               std::vector<float>(2), 2, 4, LinearSpec{});
  EXPECT_FALSE(linear.ok());
}

}  // namespace
}  // namespace attnserve
