// Backward passes of the row kernels: the double instantiation against central finite differences of the double
// forward (relative 1e-6), the float backward (the public API) against the double backward (per-op tolerances
// below), and the float forward templates against the inference kernels of elementwise.h.
#include "ops/elementwise_backward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "grad_check.h"

namespace pocketlm {
namespace {

using namespace gradcheck;  // NOLINT(google-build-using-namespace): the helpers of grad_check.h

constexpr double kFdTol = 1e-6;  // double backward vs finite differences

// f32 has 2^-24 ~ 6e-8 unit roundoff; these ops round a handful of times per output, so 1e-5 leaves a margin of
// ~10x over the largest error seen while any wrong term (a missing factor, a sign) is off by O(1).
constexpr double kFloatTol = 1e-5;

std::vector<double> Applied(const std::vector<double>& x, const std::function<void(std::vector<double>&)>& f) {
  auto y = x;
  f(y);
  return y;
}

TEST(RmsNormBackwardTest, MatchesFiniteDifferencesAndFloat) {
  for (int64_t n : {1, 2, 7, 33, 100}) {
    for (bool with_w : {false, true}) {
      const std::string tag = "n=" + std::to_string(n) + (with_w ? " w" : " no-w");
      const auto x = RandomFloatValues(static_cast<size_t>(n), 1 + static_cast<uint32_t>(n), -2, 2);
      const auto w = RandomFloatValues(static_cast<size_t>(n), 2, 0.5, 2);
      const auto r = RandomFloatValues(static_cast<size_t>(n), 3, -1, 1);  // dy: loss = sum r_i y_i
      const float eps = 1e-2f;                                             // large enough to matter in the derivative
      auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv) {
        std::vector<double> y(xv.size());
        grad::RmsNorm(xv.data(), with_w ? wv.data() : nullptr, n, eps, y.data());
        return gradcheck::Dot(y, r);
      };
      std::vector<double> dx(x.size()), dw(x.size(), 0.5);  // dw starts non-zero: it must accumulate
      grad::RmsNormBackward(x.data(), with_w ? w.data() : nullptr, n, eps, r.data(), dx.data(), dw.data());
      const auto fd_x = FiniteDiff(x, [&](const std::vector<double>& v) { return loss(v, w); });
      EXPECT_TRUE(Close("RmsNorm dx (double vs FD) " + tag, dx, fd_x, kFdTol));
      if (with_w) {
        auto fd_w = FiniteDiff(w, [&](const std::vector<double>& v) { return loss(x, v); });
        for (auto& g : fd_w) g += 0.5;
        EXPECT_TRUE(Close("RmsNorm dw (double vs FD) " + tag, dw, fd_w, kFdTol));
      } else {
        for (double g : dw) EXPECT_EQ(g, 0.5);  // no gain: nothing to accumulate
      }
      // Float API, dx aliasing dy.
      const auto xf = Cast<float>(x), wf = Cast<float>(w);
      auto dxf = Cast<float>(r);
      std::vector<float> dwf(x.size(), 0.5f);
      RmsNormBackward(xf.data(), with_w ? wf.data() : nullptr, n, eps, dxf.data(), dxf.data(), dwf.data());
      // dx_j = r w_j dy_j - x_j c cancels when eps is small next to mean(x^2) (n = 1: dx = r w dy eps / (x^2 + eps)):
      // the float error is relative to the terms, r |w_j dy_j| <= r max |w dy|.
      double terms = 0;
      for (int64_t i = 0; i < n; ++i) terms = std::max(terms, std::fabs((with_w ? w[i] : 1.0) * r[i]));
      terms /= std::sqrt(gradcheck::Dot(x, x) / static_cast<double>(n) + eps);
      EXPECT_TRUE(Close("RmsNorm dx (float vs double) " + tag, dxf, dx, kFloatTol, 1e-3, 0.1 * terms));
      // dw = 0.5 + increment cancels where the increment is near -0.5: floor 1e-2 of the largest entry.
      EXPECT_TRUE(Close("RmsNorm dw (float vs double) " + tag, dwf, dw, kFloatTol, 1e-2));
    }
  }
}

TEST(RopeBackwardTest, MatchesFiniteDifferencesAndIsTheExactTranspose) {
  const auto ff = RandomFloatValues(8, 4, 1, 8);
  const auto fff = Cast<float>(ff);
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int head_dim : {2, 10, 16}) {
      for (int rope_dim : {head_dim, 6, 2}) {
        if (rope_dim > head_dim) continue;
        for (int64_t pos : {0, 3, 1000, 100003}) {
          for (bool with_ff : {false, true}) {
            const std::string tag = "style=" + std::to_string(static_cast<int>(style)) +
                                    " hd=" + std::to_string(head_dim) + " rd=" + std::to_string(rope_dim) +
                                    " pos=" + std::to_string(pos) + (with_ff ? " ff" : "");
            const float* f = with_ff ? fff.data() : nullptr;
            const auto x = RandomFloatValues(static_cast<size_t>(head_dim), 5 + static_cast<uint32_t>(pos), -2, 2);
            const auto r = RandomFloatValues(static_cast<size_t>(head_dim), 6, -1, 1);
            auto dx = r;
            grad::RopeBackward(dx.data(), head_dim, rope_dim, style, pos, 10000.0f, f);
            const auto fd = FiniteDiff(x, [&](const std::vector<double>& v) {
              return gradcheck::Dot(Applied(v,
                                            [&](std::vector<double>& y) {
                                              grad::Rope(y.data(), head_dim, rope_dim, style, pos, 10000.0f, f);
                                            }),
                                    r);
            });
            ASSERT_TRUE(Close("Rope dx (double vs FD) " + tag, dx, fd, kFdTol));
            // Float: <Rope(x), r> == <x, RopeBackward(r)> up to rounding, because both use the same f32 cos/sin;
            // and the float backward agrees with the double one.
            auto dxf = Cast<float>(r);
            RopeBackward(dxf.data(), head_dim, rope_dim, style, pos, 10000.0f, f);
            // cos / sin rounded to f32: errors relative to the pair magnitudes (floor 1e-2 of the largest entry).
            ASSERT_TRUE(Close("Rope dx (float vs double) " + tag, dxf, dx, kFloatTol, 1e-2));
            auto yf = Cast<float>(x);
            Rope(yf.data(), head_dim, rope_dim, style, pos, 10000.0f, f);
            double lhs = 0, rhs = 0, mag = 0;
            for (size_t i = 0; i < x.size(); ++i) {
              lhs += double{yf[i]} * r[i];
              rhs += x[i] * double{dxf[i]};
              mag += std::fabs(x[i] * r[i]);
            }
            ASSERT_NEAR(lhs, rhs, 1e-6 * mag) << tag;
            // Rotating back undoes the rotation (orthogonality).
            RopeBackward(yf.data(), head_dim, rope_dim, style, pos, 10000.0f, f);
            ASSERT_TRUE(Close("Rope back(fwd(x)) == x " + tag, yf, x, kFloatTol));
          }
        }
      }
    }
  }
}

// Gates cover both tails of the activations (saturated sigmoid / tanh) and zero.
std::vector<double> Gates(size_t n, uint32_t seed, double range) {
  auto g = RandomFloatValues(n, seed, -range, range);
  g.insert(g.end(), {0.0, 1e-3, -1e-3, range, -range});
  return g;
}

using GluForward = void (*)(double*, const double*, int64_t);
using GluBackward = void (*)(const double*, const double*, const double*, int64_t, double*, double*);
using GluBackwardF = void (*)(const float*, const float*, const float*, int64_t, float*, float*);

void CheckGlu(const std::string& name, GluForward fwd, GluBackward bwd, GluBackwardF bwd_f) {
  for (double range : {1.0, 6.0}) {
    const auto g = Gates(31, 7, range);
    const auto u = RandomFloatValues(g.size(), 8, -2, 2);
    const auto r = RandomFloatValues(g.size(), 9, -1, 1);
    const auto n = static_cast<int64_t>(g.size());
    auto loss = [&](const std::vector<double>& gv, const std::vector<double>& uv) {
      auto y = gv;
      fwd(y.data(), uv.data(), n);
      return gradcheck::Dot(y, r);
    };
    std::vector<double> dg(g.size()), du(g.size());
    bwd(g.data(), u.data(), r.data(), n, dg.data(), du.data());
    const std::string tag = " range=" + std::to_string(range);
    EXPECT_TRUE(Close(name + " dgate (double vs FD)" + tag, dg,
                      FiniteDiff(g, [&](const std::vector<double>& v) { return loss(v, u); }), kFdTol));
    EXPECT_TRUE(Close(name + " dup (double vs FD)" + tag, du,
                      FiniteDiff(u, [&](const std::vector<double>& v) { return loss(g, v); }), kFdTol));
    const auto gf = Cast<float>(g), uf = Cast<float>(u);
    auto dgf = Cast<float>(r);  // dgate aliases dy
    std::vector<float> duf(g.size());
    bwd_f(gf.data(), uf.data(), dgf.data(), n, dgf.data(), duf.data());
    // GELU's 1 + tanh cancels for negative gates (as in the forward): error relative to the largest derivative.
    EXPECT_TRUE(Close(name + " dgate (float vs double)" + tag, dgf, dg, kFloatTol, 0.05));
    EXPECT_TRUE(Close(name + " dup (float vs double)" + tag, duf, du, kFloatTol));
  }
  // Far tails: finite, and the limits of the derivative (0 on the left, up on the right).
  const std::vector<float> gf = {-1e30f, -200.0f, 200.0f, 1e30f}, uf(4, 1.5f), dy(4, 1.0f);
  std::vector<float> dgf(4), duf(4);
  bwd_f(gf.data(), uf.data(), dy.data(), 4, dgf.data(), duf.data());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(dgf[i])) << name << " gate " << gf[i];
  EXPECT_EQ(dgf[0], 0.0f);
  EXPECT_FLOAT_EQ(dgf[2], 1.5f);
}

TEST(GluBackwardTest, SiluMul) {
  CheckGlu("SiluMul", &grad::SiluMul<double>, &grad::SiluMulBackward<double>, &SiluMulBackward);
}

TEST(GluBackwardTest, GeluTanhMul) {
  CheckGlu("GeluTanhMul", &grad::GeluTanhMul<double>, &grad::GeluTanhMulBackward<double>, &GeluTanhMulBackward);
}

TEST(SoftCapBackwardTest, MatchesFiniteDifferencesAndFloat) {
  for (float cap : {5.0f, 30.0f}) {
    auto x = RandomFloatValues(41, 10, -3.0 * cap, 3.0 * cap);
    x.push_back(0.0);
    const auto r = RandomFloatValues(x.size(), 11, -1, 1);
    const auto n = static_cast<int64_t>(x.size());
    std::vector<double> dx(x.size());
    grad::SoftCapBackward(x.data(), r.data(), n, cap, dx.data());
    const auto fd = FiniteDiff(x, [&](const std::vector<double>& v) {
      return gradcheck::Dot(Applied(v, [&](std::vector<double>& y) { grad::SoftCap(y.data(), n, cap); }), r);
    });
    const std::string tag = " cap=" + std::to_string(cap);
    EXPECT_TRUE(Close("SoftCap dx (double vs FD)" + tag, dx, fd, kFdTol));
    const auto xf = Cast<float>(x);
    auto dxf = Cast<float>(r);  // dx aliases dy
    SoftCapBackward(xf.data(), dxf.data(), n, cap, dxf.data());
    EXPECT_TRUE(Close("SoftCap dx (float vs double)" + tag, dxf, dx, kFloatTol));
  }
  // Saturated inputs have zero gradient, not NaN.
  const std::vector<float> big = {1e30f, -INFINITY, 1000.0f}, ones(3, 1.0f);
  std::vector<float> d(3, NAN);
  SoftCapBackward(big.data(), ones.data(), 3, 5.0f, d.data());
  for (float v : d) EXPECT_EQ(v, 0.0f);
}

// The float instantiations of the forward templates compute what the inference kernels compute (same operations
// in the same order): allow 2 roundings of slack in case a compiler contracts a*b+c differently in the two files.
TEST(ForwardTemplatesTest, FloatInstantiationsMatchInferenceKernels) {
  constexpr double kTol = 2 * 0x1p-24;
  const auto x = Cast<float>(RandomFloatValues(37, 12, -5, 5));
  const auto w = Cast<float>(RandomFloatValues(37, 13, -2, 2));
  const auto n = static_cast<int64_t>(x.size());
  std::vector<float> a(x.size()), b(x.size());
  RmsNorm(x.data(), w.data(), n, 1e-5f, a.data());
  grad::RmsNorm(x.data(), w.data(), n, 1e-5f, b.data());
  EXPECT_TRUE(Close("RmsNorm<float> vs RmsNorm", b, a, kTol, 0));
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    a = x, b = x;
    Rope(a.data(), 36, 20, style, 777, 10000.0f, nullptr);
    grad::Rope(b.data(), 36, 20, style, 777, 10000.0f, nullptr);
    // x0 c - x1 s cancels, and a compiler may contract it into an FMA in one file and not the other (GCC does by
    // default on AArch64): the two then differ by a rounding of a product, up to 2^-24 max|x| whatever the result,
    // hence the floor of max|want| (a wrong angle still shows as an O(max|x|) error).
    EXPECT_TRUE(Close("Rope<float> vs Rope", b, a, kTol, 1.0));
  }
  a = x, b = x;
  SiluMul(a.data(), w.data(), n);
  grad::SiluMul(b.data(), w.data(), n);
  // The inference SiluMul is a Highway kernel with its own exp and sigmoid form (elementwise_exp.cpp): each side is
  // within 8 roundings of the exact value (elementwise_test), so they agree within 16.
  EXPECT_TRUE(Close("SiluMul<float> vs SiluMul", b, a, 16 * 0x1p-24, 0));
  a = x, b = x;
  GeluTanhMul(a.data(), w.data(), n);
  grad::GeluTanhMul(b.data(), w.data(), n);
  EXPECT_TRUE(Close("GeluTanhMul<float> vs GeluTanhMul", b, a, kTol, 1e-3));
  a = x, b = x;
  SoftCap(a.data(), n, 3.0f);
  grad::SoftCap(b.data(), n, 3.0f);
  EXPECT_TRUE(Close("SoftCap<float> vs SoftCap", b, a, kTol, 0));
}

}  // namespace
}  // namespace pocketlm
