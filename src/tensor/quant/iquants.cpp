// IQ4_NL (32-blocks) and IQ4_XS (256-value super-blocks): 4-bit indices into the non-uniform table kIQ4NLValues
// (ggml-quants.c, "4-bit non-linear quants"). All quantizers are ggml's quantize_row_iq4_nl_impl with ntry = 7, the
// path llama-quantize takes (quantize_iq4_nl / quantize_iq4_xs), without or with an importance matrix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

using detail::BestIndexInt8;
using detail::NearestInt;

namespace {

constexpr int kNtry = 7;
constexpr int kNValues = 16;
const int8_t* const kValues = kIQ4NLValues;

// Division of the sums when every weight is 0: the reference quantizer (weights x^2, all 0 only if every x^2
// underflows) stores scale 0 where ggml b4748 divides 0/0; importance weights of 0 are real input (columns the
// calibration never saw), so the weighted quantizer keeps ggml's division and its NaN scale, byte for byte.
enum class ZeroWeights { kScaleZero, kDivide };

// Best scale of one 32-value sub-block xb under weight[0..32): start from d = -max / values[0] (the value of
// largest magnitude on the table's longer, negative end), then try the 2*ntry+1 inverse scales
// (itry + values[0]) / max and keep the least-squares scale with the largest sumqx^2 / sumq2. Lb receives the
// indices of the first pass; they are recomputed later with the rounded scale. Returns 0 for an all-zero sub-block.
float BestSubBlockScale(const float* xb, const float* weight, ZeroWeights zero_weights, uint8_t* Lb) {
  constexpr int kBlock = 32;
  float amax = 0;
  float max = 0;
  for (int j = 0; j < kBlock; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < detail::kGroupMaxEps) {
    std::memset(Lb, 0, kBlock);
    return 0;
  }
  float d = -max / kValues[0];
  float id = 1 / d;
  float sumqx = 0;
  float sumq2 = 0;
  for (int j = 0; j < kBlock; ++j) {
    const float al = id * xb[j];
    const int l = BestIndexInt8(kNValues, kValues, al);
    Lb[j] = static_cast<uint8_t>(l);
    const auto q = static_cast<float>(kValues[l]);
    const float w = weight[j];
    sumqx += w * q * xb[j];
    sumq2 += w * q * q;
  }
  d = sumq2 > 0 || zero_weights == ZeroWeights::kDivide ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int itry = -kNtry; itry <= kNtry; ++itry) {
    id = static_cast<float>(itry + kValues[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float al = id * xb[j];
      const int l = BestIndexInt8(kNValues, kValues, al);
      const auto q = static_cast<float>(kValues[l]);
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// 2 * mean(x^2) over a super-block of `size` values: widens the importance weights (quantize_row_iq4_nl_impl).
float SuperBlockSigma2(const float* x, int size) {
  float sigma2 = detail::SumOfSquares(x, size);
  sigma2 *= 2.f / static_cast<float>(size);
  return sigma2;
}

// The scale of the sub-block xb: weights x^2 without an importance matrix (qw_b nullptr), else
// qw_b * sqrt(sigma2 + x^2).
float SubBlockScale(const float* xb, const float* qw_b, float sigma2, uint8_t* Lb) {
  float weight[32];
  if (qw_b == nullptr) {
    for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
    return BestSubBlockScale(xb, weight, ZeroWeights::kScaleZero, Lb);
  }
  detail::ImportanceWeights(xb, qw_b, 32, sigma2, weight);
  return BestSubBlockScale(xb, weight, ZeroWeights::kDivide, Lb);
}

// Nibble packing shared by both formats: within each 32 values, byte j = index j | index j + 16 << 4.
void PackNibbles(const uint8_t* L, int n, uint8_t* qs) {
  for (int i = 0; i < n / 32; ++i) {
    for (int j = 0; j < 16; ++j) qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

}  // namespace

// ---- IQ4_NL: x = d * values[q] ------------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kIQ4_NL>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ4_NL*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    const uint8_t* qs = x[i].qs;
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      y[j + 0] = d * static_cast<float>(kValues[qs[j] & 0xf]);
      y[j + kQK4_NL / 2] = d * static_cast<float>(kValues[qs[j] >> 4]);
    }
    y += kQK4_NL;
  }
}

namespace {
// One super-block of one sub-block: d is the sub-block's scale (in f16), indices recomputed against the f32 scale.
// qw: the importance matrix row, or nullptr.
void QuantizeIQ4NL(const float* src, void* dst, int64_t n, const float* qw) {
  auto* y = static_cast<BlockIQ4_NL*>(dst);
  uint8_t L[kQK4_NL];
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    const float* x = src + i * kQK4_NL;
    const float* qw_b = qw != nullptr ? qw + i * kQK4_NL : nullptr;
    const float sigma2 = qw_b != nullptr ? SuperBlockSigma2(x, kQK4_NL) : 0.f;
    const float scale = SubBlockScale(x, qw_b, sigma2, L);
    y[i].d = F32ToF16(scale);
    const float id = scale != 0 ? 1 / scale : 0;
    for (int j = 0; j < kQK4_NL; ++j) L[j] = static_cast<uint8_t>(BestIndexInt8(kNValues, kValues, id * x[j]));
    PackNibbles(L, kQK4_NL, y[i].qs);
  }
}
}  // namespace

template <>
void QuantizeRow<DType::kIQ4_NL>(const float* src, void* dst, int64_t n) {
  QuantizeIQ4NL(src, dst, n, nullptr);
}

// ggml quantize_iq4_nl with an importance matrix.
template <>
void QuantizeRowWeighted<DType::kIQ4_NL>(const float* src, void* dst, int64_t n, const float* weights) {
  QuantizeIQ4NL(src, dst, n, weights);
}

// ---- IQ4_XS: x = d * (ls - 32) * values[q] ------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kIQ4_XS>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ4_XS*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* qs = x[i].qs;
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j + 0] = dl * static_cast<float>(kValues[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kValues[qs[j] >> 4]);
      }
      y += 32;
      qs += 16;
    }
  }
}

namespace {
// Sub-block scales to signed 6 bits against d = -max_scale / 32 (max_scale = the scale of largest magnitude),
// then every index recomputed with its rounded sub-block scale d * l. qw: the importance matrix row, or nullptr.
void QuantizeIQ4XS(const float* src, void* dst, int64_t n, const float* qw) {
  auto* y = static_cast<BlockIQ4_XS*>(dst);
  uint8_t L[kQK_K];
  float scales[kQK_K / 32];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    const float* qw_i = qw != nullptr ? qw + i * kQK_K : nullptr;
    const float sigma2 = qw_i != nullptr ? SuperBlockSigma2(x, kQK_K) : 0.f;
    float max_scale = 0;
    float amax_scale = 0;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      scales[ib] = SubBlockScale(x + 32 * ib, qw_i != nullptr ? qw_i + 32 * ib : nullptr, sigma2, L + 32 * ib);
      const float abs_d = std::fabs(scales[ib]);
      if (abs_d > amax_scale) {
        amax_scale = abs_d;
        max_scale = scales[ib];
      }
    }
    y[i].scales_h = 0;
    const float d = -max_scale / 32;
    y[i].d = F32ToF16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      int l = NearestInt(id * scales[ib]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0 ? 1 / dl : 0.f;
      const float* xb = x + 32 * ib;
      for (int j = 0; j < 32; ++j) {
        L[32 * ib + j] = static_cast<uint8_t>(BestIndexInt8(kNValues, kValues, idl * xb[j]));
      }
      l += 32;
      const auto l_l = static_cast<uint8_t>(l & 0xf);
      const auto l_h = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) {
        y[i].scales_l[ib / 2] = l_l;
      } else {
        y[i].scales_l[ib / 2] = static_cast<uint8_t>(y[i].scales_l[ib / 2] | (l_l << 4));
      }
      y[i].scales_h = static_cast<uint16_t>(y[i].scales_h | (l_h << 2 * (ib % 8)));
    }
    PackNibbles(L, kQK_K, y[i].qs);
  }
}
}  // namespace

template <>
void QuantizeRow<DType::kIQ4_XS>(const float* src, void* dst, int64_t n) {
  QuantizeIQ4XS(src, dst, n, nullptr);
}

// ggml quantize_iq4_xs with an importance matrix.
template <>
void QuantizeRowWeighted<DType::kIQ4_XS>(const float* src, void* dst, int64_t n, const float* weights) {
  QuantizeIQ4XS(src, dst, n, weights);
}

}  // namespace pocketlm::quant
