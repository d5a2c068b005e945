#include "ops/elementwise.h"

#include <cmath>
#include <vector>

namespace pocketlm {

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  if (w != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv;
  }
}

void RopeAngles(int rope_dim, int64_t pos, float base, const float* freq_factors, float* cs) {
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    // theta_i = pos * base^(-2i/d), computed in double to avoid drift at long positions.
    double theta = static_cast<double>(pos) * std::pow(static_cast<double>(base), -2.0 * i / rope_dim);
    if (freq_factors != nullptr) theta /= freq_factors[i];
    cs[i] = static_cast<float>(std::cos(theta));
    cs[half + i] = static_cast<float>(std::sin(theta));
  }
}

void RopeWithAngles(float* x, int rope_dim, RopeStyle style, const float* cs) {
  const int half = rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[i], s = cs[half + i];
    const int a = style == RopeStyle::kNormal ? 2 * i : i;
    const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
}

void Rope(float* x, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base, const float* freq_factors) {
  (void)head_dim;  // dimensions >= rope_dim pass through unchanged
  std::vector<float> cs(static_cast<size_t>(rope_dim));
  RopeAngles(rope_dim, pos, base, freq_factors, cs.data());
  RopeWithAngles(x, rope_dim, style, cs.data());
}

// SiluMul: elementwise_exp.cpp (Highway).

void GeluTanhMul(float* gate, const float* up, int64_t n) {
  // GELU, tanh approximation (Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void SoftCap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void ScaleInPlace(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// Softmax: elementwise_exp.cpp (Highway).

}  // namespace pocketlm
