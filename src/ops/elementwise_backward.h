// Backward passes (vector-Jacobian products) of the row kernels in elementwise.h, for training.
//
// Each takes the forward op's inputs (not its outputs, which the trainer may have overwritten in place) and the
// gradient of the loss with respect to the forward output, `dy`, and returns the gradient with respect to the
// inputs. Gradient buffers are overwritten unless the name says `accum` (then +=).
//
// The templates at the bottom are the same computations over a scalar type: the float instantiation is what the
// public functions run, the double one lets tests compare against central finite differences of the double
// forward (the forwards here repeat elementwise.cpp operation for operation, and tests check that they agree).
#pragma once

#include <cstdint>

#include "ops/elementwise.h"

namespace pocketlm {

// y = x * r * w with r = (mean(x^2) + eps)^(-1/2) (RMSNorm, Zhang & Sennrich 2019):
//   dx_j = r w_j dy_j - x_j r^3 / n * sum_i x_i w_i dy_i,   dw_j += dy_j x_j r
// x: forward input (n); w: gain (n) or null (then w = 1 and dw_accum is ignored); dy, dx: (n), dx overwritten
// (may alias x or dy); dw_accum: (n) or null, accumulated so that the rows of a batch sum into one gain gradient.
void RmsNormBackward(const float* x, const float* w, int64_t n, float eps, const float* dy, float* dx, float* dw_accum);

// In place: dx (head_dim values, the gradient at Rope's output) becomes the gradient at Rope's input. RoPE rotates
// each pair by theta, so its transpose rotates by -theta; cos/sin are computed exactly as Rope computes them, so
// this is the exact transpose of the float forward. Dimensions >= rope_dim pass through.
void RopeBackward(float* dx, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base,
                  const float* freq_factors);

// Forward: y = act(gate) * up. gate, up: the values before the forward op (n); dy: (n);
//   dgate = dy * up * act'(gate),   dup = dy * act(gate)     (both overwritten; each element is read before it is
//   written, so either output may alias any input, as long as dgate and dup do not alias each other)
// SiLU' (x) = s (1 + x (1 - s)), s = sigmoid(x) (Elfwing et al. 2017);
// GELU-tanh' (x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),
//   t = tanh(sqrt(2/pi) (x + 0.044715 x^3))   (the tanh approximation of Hendrycks & Gimpel 2016).
void SiluMulBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup);
void GeluTanhMulBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup);

// Forward y = cap * tanh(x / cap): dx = dy * (1 - tanh^2(x / cap)) = dy / cosh^2(x / cap). x: value before capping
// (n); dx may alias dy.
void SoftCapBackward(const float* x, const float* dy, int64_t n, float cap, float* dx);

// Scalar-type templates of the forwards and backwards above, instantiated for float and double in
// elementwise_backward.cpp. Hyperparameters (eps, base, freq_factors, cap) stay float: they are model constants,
// not differentiated. In the float instantiation the forwards compute what elementwise.cpp computes.
namespace grad {
template <typename Real>
void RmsNorm(const Real* x, const Real* w, int64_t n, float eps, Real* y);
template <typename Real>
void RmsNormBackward(const Real* x, const Real* w, int64_t n, float eps, const Real* dy, Real* dx, Real* dw_accum);
template <typename Real>
void Rope(Real* x, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base, const float* freq_factors);
template <typename Real>
void RopeBackward(Real* dx, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base,
                  const float* freq_factors);
template <typename Real>
void SiluMul(Real* gate, const Real* up, int64_t n);
template <typename Real>
void SiluMulBackward(const Real* gate, const Real* up, const Real* dy, int64_t n, Real* dgate, Real* dup);
template <typename Real>
void GeluTanhMul(Real* gate, const Real* up, int64_t n);
template <typename Real>
void GeluTanhMulBackward(const Real* gate, const Real* up, const Real* dy, int64_t n, Real* dgate, Real* dup);
template <typename Real>
void SoftCap(Real* x, int64_t n, float cap);
template <typename Real>
void SoftCapBackward(const Real* x, const Real* dy, int64_t n, float cap, Real* dx);
}  // namespace grad

}  // namespace pocketlm
