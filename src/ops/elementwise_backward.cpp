#include "ops/elementwise_backward.h"

#include <cmath>

namespace pocketlm {
namespace grad {

namespace {
// GELU tanh-approximation constants in the precision of Real (elementwise.cpp uses the float values).
template <typename Real>
constexpr Real kSqrt2OverPi = static_cast<Real>(0.7978845608028654);
template <typename Real>
constexpr Real kGeluCubic = static_cast<Real>(0.044715);

// cos / sin of pair i's angle as Rope computes them: theta in double, then rounded to Real.
template <typename Real>
void RopeAngle(int i, int rope_dim, int64_t pos, float base, const float* freq_factors, Real* c, Real* s) {
  double theta = static_cast<double>(pos) * std::pow(static_cast<double>(base), -2.0 * i / rope_dim);
  if (freq_factors != nullptr) theta /= freq_factors[i];
  *c = static_cast<Real>(std::cos(theta));
  *s = static_cast<Real>(std::sin(theta));
}

// 1 / sqrt(mean(x^2) + eps), the sum of squares in double as RmsNorm does.
template <typename Real>
double InvRms(const Real* x, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
}
}  // namespace

template <typename Real>
void RmsNorm(const Real* x, const Real* w, int64_t n, float eps, Real* y) {
  const auto inv = static_cast<Real>(InvRms(x, n, eps));
  for (int64_t i = 0; i < n; ++i) y[i] = w != nullptr ? x[i] * inv * w[i] : x[i] * inv;
}

template <typename Real>
void RmsNormBackward(const Real* x, const Real* w, int64_t n, float eps, const Real* dy, Real* dx, Real* dw_accum) {
  const double r = InvRms(x, n, eps);
  double dot = 0;  // sum_i x_i w_i dy_i
  for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(x[i]) * (w != nullptr ? w[i] : Real{1}) * dy[i];
  const auto rr = static_cast<Real>(r);
  const auto c = static_cast<Real>(r * r * r * dot / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) {
    const Real g = dy[i];
    if (w != nullptr && dw_accum != nullptr) dw_accum[i] += g * x[i] * rr;
    dx[i] = (w != nullptr ? g * w[i] : g) * rr - x[i] * c;
  }
}

template <typename Real>
void Rope(Real* x, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base, const float* freq_factors) {
  (void)head_dim;
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    Real c, s;
    RopeAngle(i, rope_dim, pos, base, freq_factors, &c, &s);
    const int a = style == RopeStyle::kNormal ? 2 * i : i;
    const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
    const Real x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
}

template <typename Real>
void RopeBackward(Real* dx, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base,
                  const float* freq_factors) {
  (void)head_dim;
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    Real c, s;
    RopeAngle(i, rope_dim, pos, base, freq_factors, &c, &s);
    const int a = style == RopeStyle::kNormal ? 2 * i : i;
    const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
    // [[c, -s], [s, c]]^T applied to the output gradient.
    const Real g0 = dx[a], g1 = dx[b];
    dx[a] = g0 * c + g1 * s;
    dx[b] = g1 * c - g0 * s;
  }
}

template <typename Real>
void SiluMul(Real* gate, const Real* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const Real g = gate[i];
    gate[i] = g / (Real{1} + std::exp(-g)) * up[i];
  }
}

template <typename Real>
void SiluMulBackward(const Real* gate, const Real* up, const Real* dy, int64_t n, Real* dgate, Real* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const Real g = gate[i], u = up[i], d = dy[i];
    const Real sig = Real{1} / (Real{1} + std::exp(-g));  // exp overflow for g << 0 gives sig = 0: fine
    dgate[i] = d * u * sig * (Real{1} + g * (Real{1} - sig));
    dup[i] = d * g * sig;
  }
}

template <typename Real>
void GeluTanhMul(Real* gate, const Real* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const Real g = gate[i];
    gate[i] = Real{0.5} * g * (Real{1} + std::tanh(kSqrt2OverPi<Real> * (g + kGeluCubic<Real> * g * g * g))) * up[i];
  }
}

template <typename Real>
void GeluTanhMulBackward(const Real* gate, const Real* up, const Real* dy, int64_t n, Real* dgate, Real* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const Real g = gate[i], u = up[i], d = dy[i];
    const Real t = std::tanh(kSqrt2OverPi<Real> * (g + kGeluCubic<Real> * g * g * g));
    const Real sech2 = Real{1} - t * t;
    // Where tanh has saturated, sech2 is 0 while g^3 may be inf: skip the term instead of forming 0 * inf.
    const Real inner =
        sech2 == Real{0} ? Real{0}
                         : Real{0.5} * g * sech2 * kSqrt2OverPi<Real> * (Real{1} + Real{3} * kGeluCubic<Real> * g * g);
    dgate[i] = d * u * (Real{0.5} * (Real{1} + t) + inner);
    dup[i] = d * Real{0.5} * g * (Real{1} + t);
  }
}

template <typename Real>
void SoftCap(Real* x, int64_t n, float cap) {
  const auto c = static_cast<Real>(cap);
  for (int64_t i = 0; i < n; ++i) x[i] = c * std::tanh(x[i] / c);
}

template <typename Real>
void SoftCapBackward(const Real* x, const Real* dy, int64_t n, float cap, Real* dx) {
  const auto c = static_cast<Real>(cap);
  for (int64_t i = 0; i < n; ++i) {
    // 1 - tanh^2 = 1 / cosh^2: no cancellation where tanh saturates (cosh overflows to inf there, giving 0).
    const Real ch = std::cosh(x[i] / c);
    dx[i] = dy[i] / (ch * ch);
  }
}

#define PLM_INSTANTIATE(Real)                                                                               \
  template void RmsNorm<Real>(const Real*, const Real*, int64_t, float, Real*);                             \
  template void RmsNormBackward<Real>(const Real*, const Real*, int64_t, float, const Real*, Real*, Real*); \
  template void Rope<Real>(Real*, int, int, RopeStyle, int64_t, float, const float*);                       \
  template void RopeBackward<Real>(Real*, int, int, RopeStyle, int64_t, float, const float*);               \
  template void SiluMul<Real>(Real*, const Real*, int64_t);                                                 \
  template void SiluMulBackward<Real>(const Real*, const Real*, const Real*, int64_t, Real*, Real*);        \
  template void GeluTanhMul<Real>(Real*, const Real*, int64_t);                                             \
  template void GeluTanhMulBackward<Real>(const Real*, const Real*, const Real*, int64_t, Real*, Real*);    \
  template void SoftCap<Real>(Real*, int64_t, float);                                                       \
  template void SoftCapBackward<Real>(const Real*, const Real*, int64_t, float, Real*);
PLM_INSTANTIATE(float)
PLM_INSTANTIATE(double)
#undef PLM_INSTANTIATE

}  // namespace grad

void RmsNormBackward(const float* x, const float* w, int64_t n, float eps, const float* dy, float* dx,
                     float* dw_accum) {
  grad::RmsNormBackward(x, w, n, eps, dy, dx, dw_accum);
}

void RopeBackward(float* dx, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base,
                  const float* freq_factors) {
  grad::RopeBackward(dx, head_dim, rope_dim, style, pos, base, freq_factors);
}

void SiluMulBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup) {
  grad::SiluMulBackward(gate, up, dy, n, dgate, dup);
}

void GeluTanhMulBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup) {
  grad::GeluTanhMulBackward(gate, up, dy, n, dgate, dup);
}

void SoftCapBackward(const float* x, const float* dy, int64_t n, float cap, float* dx) {
  grad::SoftCapBackward(x, dy, n, cap, dx);
}

}  // namespace pocketlm
