// Q4_K, Q5_K (8 sub-blocks of 32, 6-bit scales and mins), Q6_K (16 sub-blocks of 16, 8-bit scales) and the
// activation type Q8_K (ggml-quants.c, "4-bit", "5-bit", "6-bit (de)-quantization" and "Q8_K").
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

using detail::GetScaleMinK4;
using detail::NearestInt;

namespace {

// First stage of quantize_row_q4_K_ref / quantize_row_q5_K_ref: per sub-block of 32, make_qkx2_quants with
// weights av_x + |x| (av_x = RMS of the sub-block); then scales and mins to 6 bits against their maxima, packed
// into the 12 bytes GetScaleMinK4 reads; then every value requantized with the rounded scale and min.
// Writes d, dmin, scales; returns the final quants in L (values 0..nmax).
void QuantizeScalesMinsK(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out, uint16_t* dmin_out,
                         uint8_t* packed, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] =
        detail::MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }

  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[kQK_K / 32];
  uint8_t lm[kQK_K / 32];
  for (int j = 0; j < kQK_K / 32; ++j) {
    // ggml stores nearest_int's result in a uint8_t before clamping to 63.
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_min * mins[j])));
  }
  detail::PackScalesMinsK4(ls, lm, packed);
  *d_out = F32ToF16(max_scale / 63.f);
  *dmin_out = F32ToF16(max_min / 63.f);
  detail::RequantizeScalesMinsK4(x, nmax, *d_out, *dmin_out, packed, L);
}

}  // namespace

void detail::PackScalesMinsK4(const uint8_t* ls, const uint8_t* lm, uint8_t* packed) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    if (j < 4) {
      packed[j] = ls[j];
      packed[j + 4] = lm[j];
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls[j] >> 4) << 6));
      packed[j - 0] = static_cast<uint8_t>(packed[j - 0] | ((lm[j] >> 4) << 6));
    }
  }
}

void detail::RequantizeScalesMinsK4(const float* x, int nmax, uint16_t d16, uint16_t dmin16, const uint8_t* packed,
                                    uint8_t* L) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc;
    uint8_t m;
    GetScaleMinK4(j, packed, &sc, &m);
    const float d = F16ToF32(d16) * static_cast<float>(sc);
    if (d == 0) continue;  // zero scale: keep the search's L
    const float dm = F16ToF32(dmin16) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = NearestInt((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

void detail::PackQ4K(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 64) {
    for (int l = 0; l < 32; ++l) qs[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    qs += 32;
  }
}

void detail::PackQ5K(const uint8_t* L, uint8_t* ql, uint8_t* qh) {
  std::memset(qh, 0, kQK_K / 8);
  uint8_t m1 = 1;
  uint8_t m2 = 2;
  for (int chunk = 0; chunk < kQK_K; chunk += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[chunk + j];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m1);
      }
      int l2 = L[chunk + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
}

// ---- Q4_K: x = d * sc * q - dmin * m ------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ4_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    int is = 0;
    uint8_t sc;
    uint8_t m;
    for (int j = 0; j < kQK_K; j += 64) {
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

// ggml quantize_row_q4_K_ref: make_qkx2_quants(32, 15, ..., rmin -1, rdelta 0.1, 20 steps, squared error).
template <>
void QuantizeRow<DType::kQ4_K>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    QuantizeScalesMinsK(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    detail::PackQ4K(L, y[i].qs);
  }
}

// ---- Q5_K: as Q4_K with a 5th bit in qh ---------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ5_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    int is = 0;
    uint8_t sc;
    uint8_t m;
    uint8_t u1 = 1;
    uint8_t u2 = 2;
    for (int j = 0; j < kQK_K; j += 64) {
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

// ggml quantize_row_q5_K_ref: make_qkx2_quants(32, 31, ..., rmin -0.5, rdelta 0.1, 15 steps, squared error).
template <>
void QuantizeRow<DType::kQ5_K>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    QuantizeScalesMinsK(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    detail::PackQ5K(L, y[i].qs, y[i].qh);
  }
}

// ---- Q6_K: x = d * sc * (q - 32) ----------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ6_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < kQK_K; half += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// ggml quantize_row_q6_K_ref / quantize_row_q6_K_impl: per sub-block make_qx_quants(16, 32, rmse_type 1, qw), the
// signed scales to 8 bits against the one of largest magnitude (iscale = -128 / max_scale, clamped to 127), values
// requantized. The importance matrix only replaces the x^2 weights of the scale search.
void detail::QuantizeQ6K(const float* src, void* dst, int64_t n, const float* qw) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float* qw_sub = qw != nullptr ? qw + i * kQK_K + 16 * ib : nullptr;
      const float scale = detail::MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw_sub);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < detail::kGroupMaxEps) {  // all zero: an all-zero block decodes to zeros
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(y[i].d) * static_cast<float>(y[i].scales[j]);
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = NearestInt(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l + 0] & 0xF;
        const int q2 = L[j + l + 32] & 0xF;
        const int q3 = L[j + l + 64] & 0xF;
        const int q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                     ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

template <>
void QuantizeRow<DType::kQ6_K>(const float* src, void* dst, int64_t n) {
  detail::QuantizeQ6K(src, dst, n, nullptr);
}

// ---- Q8_K: x = d * q, d f32 ---------------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ8_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    for (int j = 0; j < kQK_K; ++j) dst[i * kQK_K + j] = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

// ggml quantize_row_q8_K_ref: iscale = -127 / (value of largest magnitude), nearest_int, clamped to 127;
// bsums = sums of each group of 16 quants.
template <>
void QuantizeRow<DType::kQ8_K>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace pocketlm::quant
