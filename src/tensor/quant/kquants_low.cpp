// Q2_K and Q3_K: 256-value super-blocks of 16 sub-blocks of 16 values (ggml-quants.c, "2-bit" and "3-bit
// (de)-quantization"). Both pack their 2 low quant bits the same way: per half of 128 values, byte l of the 32-byte
// group holds values l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

using detail::NearestInt;

namespace {
// Packs 256 2-bit values (each < 4) into the 64-byte qs layout shared by Q2_K and Q3_K.
void Pack2Bits(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}
}  // namespace

// ---- Q2_K: x = d * sc * q - dmin * m, q in [0, 3], sc and m 4-bit ------------------------------------------------

void detail::FinishQ2K(const float* x, uint8_t* L, BlockQ2_K* y) {
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = F16ToF32(y->d) * static_cast<float>(y->scales[j] & 0xF);
    if (d == 0) continue;  // zero scale: keep the search's L (all values decode to -dm anyway)
    const float dm = F16ToF32(y->dmin) * static_cast<float>(y->scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      const int l = NearestInt((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
    }
  }
  Pack2Bits(L, y->qs);
}

template <>
void DequantizeRow<DType::kQ2_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int half = 0; half < kQK_K; half += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        // Two sub-blocks of 16 per bit pair: bytes 0-15 and 16-31 of the group.
        for (int part = 0; part < 2; ++part) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
        shift += 2;
      }
      q += 32;
    }
  }
}

// ggml quantize_row_q2_K_ref: per sub-block, make_qkx2_quants with weights |x| (mean absolute error, 16 steps
// from nmax - 0.5), then scales and mins quantized to 4 bits against their maxima, then every value requantized
// with the rounded scales.
template <>
void QuantizeRow<DType::kQ2_K>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ2_K*>(dst);
  const float* x = src;
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  const float q4scale = 15.f;

  for (int64_t i = 0; i < n / kQK_K; ++i) {
    float max_scale = 0;  // scales are non-negative because the min is subtracted
    float max_min = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = detail::MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
      y[i].d = F32ToF16(max_scale / q4scale);
    } else {
      for (int j = 0; j < kQK_K / 16; ++j) y[i].scales[j] = 0;
      y[i].d = F32ToF16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < kQK_K / 16; ++j) {
        y[i].scales[j] = static_cast<uint8_t>(y[i].scales[j] | (NearestInt(iscale * mins[j]) << 4));
      }
      y[i].dmin = F32ToF16(max_min / q4scale);
    } else {
      y[i].dmin = F32ToF16(0.f);
    }
    detail::FinishQ2K(x, L, &y[i]);
    x += kQK_K;
  }
}

// ---- Q3_K: x = d * (sc - 32) * (q - 4), q in [0, 7], sc 6-bit ----------------------------------------------------

namespace {
// The 16 6-bit scales of a Q3_K block, unpacked as ggml dequantize_row_q3_K does (kmask1/kmask2 on 4 u32 words):
// scale j = low nibble (byte j for j < 8, high nibble of byte j - 8 otherwise) | bits 2*(j/4).. of byte 8 + j%4.
void UnpackQ3Scales(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
    const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>(lo | (hi << 4));
  }
}
}  // namespace

void detail::PackQ3Scales(const int8_t* ls, uint8_t* packed) {
  std::memset(packed, 0, 12);
  for (int j = 0; j < kQK_K / 16; ++j) {
    int l = ls[j];
    if (j < 8) {
      packed[j] = static_cast<uint8_t>(l & 0xF);
    } else {
      packed[j - 8] = static_cast<uint8_t>(packed[j - 8] | ((l & 0xF) << 4));
    }
    l >>= 4;
    packed[j % 4 + 8] = static_cast<uint8_t>(packed[j % 4 + 8] | (l << (2 * (j / 4))));
  }
}

void detail::FinishQ3K(const float* x, int8_t* L, BlockQ3_K* y) {
  int8_t sc[16];
  UnpackQ3Scales(y->scales, sc);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = F16ToF32(y->d) * static_cast<float>(sc[j] - 32);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = NearestInt(x[16 * j + ii] / d);
      L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
    }
  }
  // High bit of value j goes to bit j / 32 of hmask[j % 32]; the low 2 bits are packed as in Q2_K.
  std::memset(y->hmask, 0, kQK_K / 8);
  uint8_t low[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    int l = L[j];
    if (l > 3) {
      y->hmask[j % 32] = static_cast<uint8_t>(y->hmask[j % 32] | (1 << (j / 32)));
      l -= 4;
    }
    low[j] = static_cast<uint8_t>(l);
  }
  Pack2Bits(low, y->qs);
}

template <>
void DequantizeRow<DType::kQ3_K>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(src);
  float* y = dst;
  int8_t scales[16];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d_all = F16ToF32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    UnpackQ3Scales(x[i].scales, scales);
    int is = 0;
    for (int half = 0; half < kQK_K; half += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[is++] - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int q3 = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(q3);
          }
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

// ggml quantize_row_q3_K_ref: per sub-block make_q3_quants (x^2-weighted, coordinate descent), the 16 signed
// scales quantized to 6 bits against the one of largest magnitude (iscale = -32 / max_scale), then every value
// requantized with the rounded scales.
template <>
void QuantizeRow<DType::kQ3_K>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ3_K*>(dst);
  const float* x = src;
  int8_t L[kQK_K];
  float scales[kQK_K / 16];

  for (int64_t i = 0; i < n / kQK_K; ++i) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = detail::MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j, true);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }

    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      int8_t ls[kQK_K / 16];
      for (int j = 0; j < kQK_K / 16; ++j) {
        // ggml stores nearest_int's result in an int8_t before clamping.
        const auto l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
        ls[j] = static_cast<int8_t>(std::max<int>(-32, std::min<int>(31, l)) + 32);
      }
      detail::PackQ3Scales(ls, y[i].scales);
      y[i].d = F32ToF16(1 / iscale);
    } else {
      std::memset(y[i].scales, 0, 12);
      y[i].d = F32ToF16(0.f);
    }
    detail::FinishQ3K(x, L, &y[i]);
    x += kQK_K;
  }
}

}  // namespace pocketlm::quant
