// Helpers of the gradient-check tests: central finite differences in double and an element-wise comparison that
// reports (and prints) its worst error, so test logs show how much margin each tolerance has.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace pocketlm::gradcheck {

// d f / d x_i for every i by central differences with one Richardson extrapolation (error O(h^4)):
//   D(h) = (f(x + h e_i) - f(x - h e_i)) / (2h),   d f / d x_i ~ (4 D(h/2) - D(h)) / 3,   h = step * max(1, |x_i|).
// With h = 1e-3 the truncation error is ~1e-12 and the rounding error ~2^-53 |f| / h ~ 1e-13 |f| for the smooth,
// O(1)-scaled functions of these tests: far below the 1e-6 tolerance used against them.
template <class F>
std::vector<double> FiniteDiff(std::vector<double> x, F&& f, double step = 1e-3) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double xi = x[i];
    const double h = step * std::max(1.0, std::fabs(xi));
    auto central = [&](double hh) {
      x[i] = xi + hh;
      const double fp = f(x);
      x[i] = xi - hh;
      const double fm = f(x);
      x[i] = xi;
      return (fp - fm) / (2 * hh);
    };
    g[i] = (4 * central(h / 2) - central(h)) / 3;
  }
  return g;
}

// Largest |got_i - want_i| / (|want_i| + floor) with floor = floor_frac * max_j |want_j| + floor_abs: a relative
// error that does not blow up on entries that are zero or nearly so through cancellation (floor_abs: the scale of
// the cancelling terms when the caller knows it). Fails when it exceeds rtol; prints the maximum either way.
template <class A, class B>
::testing::AssertionResult Close(const std::string& what, const A& got, const B& want, double rtol,
                                 double floor_frac = 1e-3, double floor_abs = 0) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << what << ": size mismatch";
  double scale = 0;
  for (const auto& w : want) scale = std::max(scale, std::fabs(static_cast<double>(w)));
  const double floor = floor_frac * scale + floor_abs + 1e-300;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    const double err = std::isfinite(g) ? std::fabs(g - w) / (std::fabs(w) + floor) : INFINITY;
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  std::printf("  [max err] %-60s %.3g (tol %.1g)\n", what.c_str(), worst, rtol);
  if (worst <= rtol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": relative error " << worst << " > " << rtol << " at index " << at
                                       << " (got " << static_cast<double>(got[at]) << ", want "
                                       << static_cast<double>(want[at]) << ", max |want| " << scale << ")";
}

inline std::vector<double> RandomDoubles(size_t n, uint32_t seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Values exactly representable in float, so the float and double instantiations see the same inputs.
inline std::vector<double> RandomFloatValues(size_t n, uint32_t seed, double lo, double hi) {
  auto v = RandomDoubles(n, seed, lo, hi);
  for (auto& x : v) x = static_cast<float>(x);
  return v;
}

template <class To, class From>
std::vector<To> Cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

inline double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace pocketlm::gradcheck
