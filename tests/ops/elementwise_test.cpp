// Row kernels against formulas written here in double. Tolerances are stated per op: a few f32 roundings
// (2^-24 each) relative to the magnitude of the result or of the inputs where cancellation is inherent.
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "hwy/targets.h"

namespace pocketlm {
namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of f32

std::vector<float> RandomVec(size_t n, uint32_t seed, float lo = -3.0f, float hi = 3.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(RmsNormTest, MatchesDefinition) {
  // y = x / sqrt(mean(x^2) + eps) * w. The kernel rounds 1/rms and two products to f32: |err| <= 4u |y|.
  for (int64_t n : {1, 7, 64, 1000}) {
    for (bool with_w : {false, true}) {
      const auto x = RandomVec(static_cast<size_t>(n), 1);
      const auto w = RandomVec(static_cast<size_t>(n), 2, 0.5f, 2.0f);
      const float eps = 1e-5f;
      std::vector<float> y(static_cast<size_t>(n));
      RmsNorm(x.data(), with_w ? w.data() : nullptr, n, eps, y.data());
      double ss = 0;
      for (float v : x) ss += double{v} * v;
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + double{eps});
      for (size_t i = 0; i < y.size(); ++i) {
        const double want = x[i] * inv * (with_w ? double{w[i]} : 1.0);
        EXPECT_NEAR(y[i], want, 4 * kU * std::fabs(want) + 1e-30) << "n=" << n << " i=" << i;
      }
    }
  }
  // In place, and eps matters for a zero row (no division by zero).
  std::vector<float> z(8, 0.0f);
  RmsNorm(z.data(), nullptr, 8, 1e-6f, z.data());
  for (float v : z) EXPECT_EQ(v, 0.0f);
  std::vector<float> c(4, 2.0f);
  RmsNorm(c.data(), nullptr, 4, 0.0f, c.data());
  for (float v : c) EXPECT_FLOAT_EQ(v, 1.0f);
}

// Pair (a, b) of rotation i in each style, as the RoPE papers / ggml define them.
std::pair<int, int> PairOf(RopeStyle style, int i, int rope_dim) {
  return style == RopeStyle::kNormal ? std::make_pair(2 * i, 2 * i + 1) : std::make_pair(i, i + rope_dim / 2);
}

// Reference RoPE: pair i turns by angle pos / (base^(2i/rope_dim) * ff[i]) (Su et al. 2021, eq. 34).
std::vector<double> RopeReference(const std::vector<float>& x, int rope_dim, RopeStyle style, int64_t pos, double base,
                                  const float* ff) {
  std::vector<double> out(x.begin(), x.end());
  for (int i = 0; i < rope_dim / 2; ++i) {
    const double angle = static_cast<double>(pos) / (std::pow(base, 2.0 * i / rope_dim) * (ff ? ff[i] : 1.0));
    const auto [a, b] = PairOf(style, i, rope_dim);
    out[static_cast<size_t>(a)] =
        x[static_cast<size_t>(a)] * std::cos(angle) - x[static_cast<size_t>(b)] * std::sin(angle);
    out[static_cast<size_t>(b)] =
        x[static_cast<size_t>(a)] * std::sin(angle) + x[static_cast<size_t>(b)] * std::cos(angle);
  }
  return out;
}

TEST(RopeTest, BothStylesMatchPairwiseRotation) {
  // cos / sin are rounded to f32, then two products and a sum: |err| <= 4u (|x_a| + |x_b|) per pair.
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int head_dim : {4, 16, 64, 128}) {
      for (int rope_dim : {head_dim, head_dim / 2}) {
        for (int64_t pos : {0, 1, 7, 1000, 100000}) {
          for (bool with_ff : {false, true}) {
            const auto x0 = RandomVec(static_cast<size_t>(head_dim), static_cast<uint32_t>(head_dim + pos));
            const auto ff = RandomVec(static_cast<size_t>(rope_dim / 2), 5, 1.0f, 8.0f);
            auto x = x0;
            Rope(x.data(), head_dim, rope_dim, style, pos, 10000.0f, with_ff ? ff.data() : nullptr);
            const auto want = RopeReference(x0, rope_dim, style, pos, 10000.0, with_ff ? ff.data() : nullptr);
            for (int i = 0; i < rope_dim / 2; ++i) {
              const auto [a, b] = PairOf(style, i, rope_dim);
              const double scale = std::fabs(x0[static_cast<size_t>(a)]) + std::fabs(x0[static_cast<size_t>(b)]);
              const double tol = 4 * kU * scale + 1e-30;
              ASSERT_NEAR(x[static_cast<size_t>(a)], want[static_cast<size_t>(a)], tol)
                  << "style=" << static_cast<int>(style) << " hd=" << head_dim << " rd=" << rope_dim << " pos=" << pos
                  << " pair " << i;
              ASSERT_NEAR(x[static_cast<size_t>(b)], want[static_cast<size_t>(b)], tol);
              // A rotation preserves the norm of each pair.
              const double n0 = std::hypot(double{x0[static_cast<size_t>(a)]}, double{x0[static_cast<size_t>(b)]});
              const double n1 = std::hypot(double{x[static_cast<size_t>(a)]}, double{x[static_cast<size_t>(b)]});
              ASSERT_NEAR(n1, n0, 8 * kU * n0 + 1e-30);
            }
            // Dimensions past rope_dim pass through untouched.
            for (int d = rope_dim; d < head_dim; ++d) ASSERT_EQ(x[static_cast<size_t>(d)], x0[static_cast<size_t>(d)]);
            if (pos == 0) {
              EXPECT_EQ(x, x0);
            }
          }
        }
      }
    }
  }
}

TEST(RopeTest, HandCheckedAngles) {
  // head_dim 4, base 10000, pos 1: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
  std::vector<float> x = {1, 0, 1, 0};
  Rope(x.data(), 4, 4, RopeStyle::kNormal, 1, 10000.0f, nullptr);
  EXPECT_NEAR(x[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(x[1], std::sin(1.0), 1e-7);
  EXPECT_NEAR(x[2], std::cos(0.01), 1e-7);
  EXPECT_NEAR(x[3], std::sin(0.01), 1e-7);
  // NeoX pairs (0, 2) and (1, 3).
  std::vector<float> y = {1, 1, 0, 0};
  Rope(y.data(), 4, 4, RopeStyle::kNeox, 1, 10000.0f, nullptr);
  EXPECT_NEAR(y[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(y[2], std::sin(1.0), 1e-7);
  EXPECT_NEAR(y[1], std::cos(0.01), 1e-7);
  EXPECT_NEAR(y[3], std::sin(0.01), 1e-7);
}

TEST(RopeTest, FreqFactorsDivideTheAngle) {
  // Angle = pos * base^(-2i/d) / ff[i]: factors of 2 at position 2p give the same rotation as no factors at p.
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    const auto x0 = RandomVec(32, 9);
    const std::vector<float> twos(16, 2.0f);
    auto a = x0, b = x0;
    Rope(a.data(), 32, 32, style, 2 * 37, 500000.0f, twos.data());
    Rope(b.data(), 32, 32, style, 37, 500000.0f, nullptr);
    for (size_t i = 0; i < 32; ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << i;
    // Ones change nothing.
    const std::vector<float> ones(16, 1.0f);
    auto c = x0, d = x0;
    Rope(c.data(), 32, 32, style, 123, 10000.0f, ones.data());
    Rope(d.data(), 32, 32, style, 123, 10000.0f, nullptr);
    EXPECT_EQ(c, d);
  }
}

// SiluMul and Softmax are Highway kernels (elementwise_exp.cpp): checked on every target compiled in.
class ExpKernelTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(ExpKernelTargetTest, SiluMulMatchesDefinition) {
  // gate * sigmoid(gate) * up; exp and the division round a few times: |err| <= 8u |y| (no cancellation).
  // 1007 values (a partial last vector), from an odd offset (unaligned), plus every length 0..20 (tails).
  std::vector<float> g = RandomVec(1000, 3, -20.0f, 20.0f);
  g.insert(g.end(), {0.0f, -0.0f, 1e-6f, -100.0f, 100.0f, -88.0f, 88.0f});
  const auto up = RandomVec(g.size(), 4, -2.0f, 2.0f);
  for (size_t first : {size_t{0}, size_t{1}}) {
    for (size_t len : {g.size() - first, size_t{0}, size_t{1}, size_t{5}, size_t{15}, size_t{17}, size_t{20}}) {
      auto y = g;
      SiluMul(y.data() + first, up.data() + first, static_cast<int64_t>(len));
      for (size_t i = 0; i < g.size(); ++i) {
        if (i < first || i >= first + len) {
          ASSERT_EQ(y[i], g[i]) << "outside the range: untouched";
          continue;
        }
        const double want = g[i] / (1.0 + std::exp(-double{g[i]})) * up[i];
        ASSERT_NEAR(y[i], want, 8 * kU * std::fabs(want) + 1e-37) << "g=" << g[i];
      }
    }
  }
}

TEST(ActivationTest, GeluTanhMulMatchesDefinition) {
  // 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up (Hendrycks & Gimpel 2016). For negative g, 1 + tanh
  // cancels, so the f32 rounding of tanh (~u) is amplified: |err| <= 4u |g up| + 8u |y|.
  std::vector<float> g = RandomVec(1000, 5, -8.0f, 8.0f);
  g.insert(g.end(), {0.0f, 1e-6f, -1e-6f, 30.0f, -30.0f});
  const auto up = RandomVec(g.size(), 6, -2.0f, 2.0f);
  auto y = g;
  GeluTanhMul(y.data(), up.data(), static_cast<int64_t>(y.size()));
  const double k = std::sqrt(2.0 / M_PI);
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    const double want = 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x))) * up[i];
    ASSERT_NEAR(y[i], want, 4 * kU * std::fabs(x * up[i]) + 8 * kU * std::fabs(want) + 1e-37) << "g=" << x;
  }
}

TEST(SoftCapTest, MatchesDefinition) {
  // cap * tanh(x / cap): the division's rounding passes through tanh' <= 1, so |err| <= 4u (|y| + |x|).
  for (float cap : {5.0f, 30.0f, 50.0f}) {
    std::vector<float> x = RandomVec(500, 7, -200.0f, 200.0f);
    x.insert(x.end(), {0.0f, 1e30f, -1e30f, INFINITY, -INFINITY});
    auto y = x;
    SoftCap(y.data(), static_cast<int64_t>(y.size()), cap);
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = cap * std::tanh(double{x[i]} / cap);
      const double tol = std::isinf(x[i]) ? 0.0 : 4 * kU * (std::fabs(want) + std::fabs(x[i]));
      ASSERT_NEAR(y[i], want, std::min(tol, 4 * kU * cap + 4 * kU * std::fabs(want)) + 1e-37) << "x=" << x[i];
      ASSERT_LE(std::fabs(y[i]), cap);
    }
  }
}

TEST_P(ExpKernelTargetTest, SoftmaxMatchesDefinition) {
  // exp(x - max) / sum in double: |err| <= 4u p + 1e-12 (exp and the scaling round in f32).
  for (int64_t n : {1, 2, 5, 100, 4097}) {
    auto x = RandomVec(static_cast<size_t>(n), 8, -30.0f, 30.0f);
    if (n > 3) {
      x[1] = -INFINITY;  // masked
      x[2] = 1000.0f;    // large: must not overflow
    }
    auto p = x;
    Softmax(p.data(), n);
    double mx = -INFINITY;
    for (float v : x) mx = std::max(mx, double{v});
    double sum = 0;
    for (float v : x) sum += std::exp(v - mx);
    double total = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(x[i] - mx) / sum;
      ASSERT_NEAR(p[i], want, 4 * kU * want + 1e-12) << "n=" << n << " i=" << i;
      total += p[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
    if (n > 3) {
      EXPECT_EQ(p[1], 0.0f);
    }
  }
}

TEST_P(ExpKernelTargetTest, SoftmaxAllMaskedGivesZeros) {
  std::vector<float> x(6, -INFINITY);
  Softmax(x.data(), 6);
  for (float v : x) EXPECT_EQ(v, 0.0f);
}

TEST_P(ExpKernelTargetTest, SoftmaxShiftInvariantAndUniformForEqualInputs) {
  std::vector<float> a = {1, 2, 3}, b = {101, 102, 103}, c(7, 42.0f);
  Softmax(a.data(), 3);
  Softmax(b.data(), 3);
  Softmax(c.data(), 7);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a[i], b[i], 1e-7);
  for (float v : c) EXPECT_NEAR(v, 1.0 / 7, 1e-7);
}

TEST(ElementwiseTest, AddAndScale) {
  std::vector<float> x = {1, 2, 3}, y = {0.5f, -2, 10};
  AddInPlace(x.data(), y.data(), 3);
  EXPECT_EQ(x, (std::vector<float>{1.5f, 0, 13}));
  ScaleInPlace(x.data(), 3, -2.0f);
  EXPECT_EQ(x, (std::vector<float>{-3, -0.0f, -26}));
}

INSTANTIATE_TEST_SUITE_P(elementwise, ExpKernelTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& p) { return hwy::TargetName(p.param); });

}  // namespace
}  // namespace pocketlm
