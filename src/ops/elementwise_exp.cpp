// The elementwise kernels that evaluate exponentials (elementwise.h), with Highway's Exp: in a 256-token prefill
// of a Qwen2-0.5B-shaped model, SiluMul (n_ff exponentials per token) took ~10% of the time and Softmax (one per
// attention score) ~5% as scalar expf calls.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise_exp.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Must follow highway.h.
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// silu(g) = g * sigmoid(g), sigmoid(g) = 1 / (1 + e) for g >= 0 and e / (1 + e) for g < 0, e = exp(-|g|): e is in
// (0, 1], so nothing overflows for any finite g (hn::Exp is valid up to +104 only), and the division is as exact
// as the scalar form's.
void SiluMulImpl(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f);
  const auto silu = [&](auto g) {
    const auto e = hn::Exp(d, hn::Neg(hn::Abs(g)));
    const auto num = hn::IfThenElse(hn::Lt(g, hn::Zero(d)), e, one);
    return hn::Mul(g, hn::Div(num, hn::Add(one, e)));
  };
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(silu(hn::LoadU(d, gate + i)), hn::LoadU(d, up + i)), d, gate + i);
  }
  if (i < n) {
    // The last partial vector through a local copy: Highway 1.0.3 emulates masked loads with full-width loads on
    // some targets, which could read past the end of the row.
    HWY_ALIGN float g[hn::MaxLanes(d)] = {}, u[hn::MaxLanes(d)] = {};
    const auto rest = static_cast<size_t>(n - i);
    std::memcpy(g, gate + i, rest * sizeof(float));
    std::memcpy(u, up + i, rest * sizeof(float));
    hn::Store(hn::Mul(silu(hn::Load(d, g)), hn::Load(d, u)), d, g);
    std::memcpy(gate + i, g, rest * sizeof(float));
  }
}

// Softmax: max and exp(x - max) in vectors (masked -inf scores give exactly 0; hn::Exp is not specified for
// -inf), the normalizing sum in double as the scalar form did, then one scaling pass.
void SoftmaxImpl(float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  float mx = -INFINITY;
  int64_t i = 0;
  if (n >= N) {
    auto vmax = hn::Set(d, -INFINITY);
    for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  }
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  if (mx == -INFINITY) {
    for (i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  const auto vmx = hn::Set(d, mx), neg_inf = hn::Set(d, -INFINITY);
  // The sum: per lane in f32 over at most 16 vectors, then in double (one dependent double add per element was
  // most of the softmax of a few hundred attention scores).
  double sum = 0;
  for (i = 0; i + N <= n;) {
    auto part = hn::Zero(d);
    for (const int64_t stop = std::min(n, i + 16 * N); i + N <= stop; i += N) {
      const auto v = hn::LoadU(d, x + i);
      const auto e = hn::IfThenZeroElse(hn::Eq(v, neg_inf), hn::Exp(d, hn::Sub(v, vmx)));
      hn::StoreU(e, d, x + i);
      part = hn::Add(part, e);
    }
    sum += hn::GetLane(hn::SumOfLanes(d, part));
  }
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));  // exp(-inf) = 0
  const auto inv = static_cast<float>(1.0 / sum);
  const auto vinv = hn::Set(d, inv);
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vinv), d, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(SoftmaxImpl);

void SiluMul(float* gate, const float* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n);
}

void Softmax(float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n);
}
}  // namespace pocketlm
#endif
