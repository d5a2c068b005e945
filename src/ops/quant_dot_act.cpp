// Activation quantization for the quantized dot products (quant_dot.h): f32 rows to Q8_0 / Q8_1 / Q8_K blocks,
// bit-exact with the reference quantizers in tensor/quant (ggml's quantize_row_q8_0_ref, q8_1_ref, q8_K_ref),
// written once with Highway. Scales, sums and the f16 conversions are scalar per block; the per-value multiply and
// rounding are vectorized and use the same single f32 product as the references, so results match bit for bit.
#include <cmath>
#include <cstring>

#include "ops/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/quant_dot_act.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using namespace quant;  // NOLINT(google-build-using-namespace): block structs

// At most 32 lanes so that a 32-value block is a whole number of vectors on every target.
using DF = hn::CappedTag<float, 32>;
using DI32 = hn::RebindToSigned<DF>;
using DI8 = hn::Rebind<int8_t, DF>;

// max |x[0..n)| (n a multiple of the lane count).
float MaxAbs(const float* x, size_t n) {
  const DF df;
  auto m = hn::Zero(df);
  for (size_t i = 0; i < n; i += hn::Lanes(df)) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + i)));
  return hn::GetLane(hn::MaxOfLanes(df, m));
}

// q[i] = roundf(x[i] * id): round half away from zero, as C's roundf in quantize_row_q8_0_ref. Trunc and the
// fraction are exact for |x * id| < 2^23, so this is the same function of the same f32 product.
void RoundScaled(const float* x, float id, size_t n, int8_t* q) {
  const DF df;
  const DI32 di;
  const DI8 d8;
  const auto vid = hn::Set(df, id);
  const auto half = hn::Set(df, 0.5f);
  const auto one = hn::Set(df, 1.0f);
  for (size_t i = 0; i < n; i += hn::Lanes(df)) {
    const auto v = hn::Mul(hn::LoadU(df, x + i), vid);
    const auto t = hn::Trunc(v);
    const auto away = hn::IfThenElseZero(hn::Ge(hn::Abs(hn::Sub(v, t)), half), one);
    const auto r = hn::Add(t, hn::CopySign(away, v));
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, r)), d8, q + i);
  }
}

// q[i] = min(127, nearest_int(iscale * x[i])), ties to even as ggml's nearest_int (quantize_row_q8_K_ref).
void NearestScaled(const float* x, float iscale, size_t n, int8_t* q) {
  const DF df;
  const DI32 di;
  const DI8 d8;
  const auto vs = hn::Set(df, iscale);
  const auto k127 = hn::Set(di, 127);
  for (size_t i = 0; i < n; i += hn::Lanes(df)) {
    const auto v = hn::Min(hn::NearestInt(hn::Mul(vs, hn::LoadU(df, x + i))), k127);
    hn::StoreU(hn::DemoteTo(d8, v), d8, q + i);
  }
}

// quantize_row_q8_0_ref / quantize_row_q8_1_ref: d = max|x| / 127, q = roundf(x / d); Q8_1 adds s = d * sum(q).
template <class B>
void QuantizeRow8(const float* x, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / 32; ++i) {
    B y;
    const float* xb = x + 32 * i;
    const float d = MaxAbs(xb, 32) / ((1 << 7) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y.d = F32ToF16(d);
    RoundScaled(xb, id, 32, y.qs);
    if constexpr (sizeof(B) == sizeof(BlockQ8_1)) {
      int sum = 0;
      for (int j = 0; j < 32; ++j) sum += y.qs[j];
      y.s = F32ToF16(static_cast<float>(sum) * d);
    }
    std::memcpy(out + i * static_cast<int64_t>(sizeof(B)), &y, sizeof(B));
  }
}

// quantize_row_q8_K_ref: iscale = -127 / (the first value of largest magnitude), bsums per 16.
void QuantizeRowQ8_K(const float* x, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    BlockQ8_K y;
    const float* xb = x + kQK_K * i;
    const float amax = MaxAbs(xb, kQK_K);
    if (amax == 0) {
      std::memset(&y, 0, sizeof(y));
    } else {
      float max = 0;
      for (int j = 0; j < kQK_K; ++j) {
        if (std::fabs(xb[j]) == amax) {
          max = xb[j];
          break;
        }
      }
      const float iscale = -127.f / max;
      NearestScaled(xb, iscale, kQK_K, y.qs);
      for (int j = 0; j < kQK_K / 16; ++j) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += y.qs[16 * j + l];
        y.bsums[j] = static_cast<int16_t>(sum);
      }
      y.d = 1 / iscale;
    }
    std::memcpy(out + i * static_cast<int64_t>(sizeof(y)), &y, sizeof(y));
  }
}

void QuantizeActivationsImpl(DType at, const float* x, int64_t n_tokens, int64_t n, uint8_t* out, size_t row_bytes) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + t * n;
    uint8_t* ot = out + static_cast<size_t>(t) * row_bytes;
    if (at == DType::kQ8_0) {
      QuantizeRow8<BlockQ8_0>(xt, n, ot);
    } else if (at == DType::kQ8_1) {
      QuantizeRow8<BlockQ8_1>(xt, n, ot);
    } else {
      QuantizeRowQ8_K(xt, n, ot);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(QuantizeActivationsImpl);

size_t QuantizeActivations(DType wt, const float* x, int64_t n_tokens, int64_t n, uint8_t* out) {
  const size_t row_bytes = ActivationRowBytes(wt, n);
  if (row_bytes == 0) return 0;
  HWY_DYNAMIC_DISPATCH(QuantizeActivationsImpl)
  (GetDTypeInfo(wt).vec_dot_type, x, n_tokens, n, out, row_bytes);
  return row_bytes;
}

}  // namespace pocketlm
#endif
