// Decoders of the lattice i-quants IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M (layouts in blocks.h,
// codebooks in iq_grids.h). The specification is ggml-quants.c's dequantize_row_* (llama.cpp c392e50): every value
// is computed with ggml's float operations in ggml's order, so the output is the same bits:
//   IQ2/IQ3: (sub-block scale * grid value) * (+1 or -1), the sub-block scale being d * (0.5 + s) * 0.25 (IQ2),
//            d * (0.5 + s) * 0.5 (IQ3_XXS) or d * (1 + 2s) (IQ3_S);
//   IQ1:     scale * (grid value + delta), scale = d * (2s + 1).
// Their quantizers, a codebook search guided by an importance matrix, are in iq2_quantize.cpp, iq3_quantize.cpp and
// iq1_quantize.cpp on top of lattice_codebook.h.
#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {

namespace {

// Little-endian u32 from 4 bytes (IQ2_XXS and IQ3_XXS keep scale and sign bits in such words).
uint32_t LoadLE32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// 8 values of an IQ2/IQ3 group: y[j] = (dl * byte j of entry) * (bit j of signs ? -1 : 1). Multiplied by the sign
// as ggml does rather than negated (the two differ only in the sign bit of a NaN, from a damaged scale).
void SignedGroup(float dl, uint64_t entry, uint8_t signs, float* y) {
  for (int j = 0; j < 8; ++j) {
    const float sign = (signs >> j) & 1 ? -1.f : 1.f;
    y[j] = dl * static_cast<float>(GridByte(entry, j)) * sign;
  }
}

// 8 values of an IQ1 group: y[j] = dl * (signed byte j of entry + delta).
void OffsetGroup(float dl, float delta, uint64_t entry, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(static_cast<int8_t>(GridByte(entry, j))) + delta);
}

// The 4-bit sub-block scale code s of IQ2_XS / IQ2_S: groups 0-1 use the low nibble, groups 2-3 the high one.
void IQ2NibbleScales(float d, uint8_t packed, float db[2]) {
  db[0] = d * (0.5f + static_cast<float>(packed & 0xf)) * 0.25f;
  db[1] = d * (0.5f + static_cast<float>(packed >> 4)) * 0.25f;
}

// Two 4-value IQ3 grid entries as one 8-value entry (first half in bytes 0-3).
uint64_t Halves(uint32_t lo, uint32_t hi) {
  return static_cast<uint64_t>(lo) | static_cast<uint64_t>(hi) << 32;
}

}  // namespace

template <>
void DequantizeRow<DType::kIQ2_XXS>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_XXS*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    const auto* qs = reinterpret_cast<const uint8_t*>(x[i].qs);
    for (int ib = 0; ib < kQK_K / 32; ++ib, qs += 8) {
      const uint32_t indices = LoadLE32(qs);
      const uint32_t meta = LoadLE32(qs + 4);
      const float db = d * (0.5f + static_cast<float>(meta >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        SignedGroup(db, kIQ2XXSGrid[(indices >> 8 * l) & 0xff], kIQ2XSSigns[(meta >> 7 * l) & 127], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ2_XS>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_XS*>(src);
  float* y = dst;
  float db[2];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      IQ2NibbleScales(d, x[i].scales[ib], db);
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = x[i].qs[4 * ib + l];
        SignedGroup(db[l / 2], kIQ2XSGrid[q & 511], kIQ2XSSigns[q >> 9], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ2_S>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_S*>(src);
  float* y = dst;
  float db[2];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* signs = x[i].qs + kQK_K / 8;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      IQ2NibbleScales(d, x[i].scales[ib], db);
      for (int l = 0; l < 4; ++l, y += 8) {
        const int index = x[i].qs[4 * ib + l] | ((x[i].qh[ib] >> 2 * l) & 3) << 8;
        SignedGroup(db[l / 2], kIQ2SGrid[index], signs[4 * ib + l], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ3_XXS>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ3_XXS*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* scales_and_signs = x[i].qs + kQK_K / 4;
    for (int ib = 0; ib < kQK_K / 32; ++ib, qs += 8) {
      const uint32_t meta = LoadLE32(scales_and_signs + 4 * ib);
      const float db = d * (0.5f + static_cast<float>(meta >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint64_t entry = Halves(kIQ3XXSGrid[qs[2 * l]], kIQ3XXSGrid[qs[2 * l + 1]]);
        SignedGroup(db, entry, kIQ2XSSigns[(meta >> 7 * l) & 127], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ3_S>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ3_S*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int s = (x[i].scales[ib / 2] >> 4 * (ib % 2)) & 0xf;
      const float db = d * static_cast<float>(1 + 2 * s);
      const uint8_t* qs = x[i].qs + 8 * ib;
      const int qh = x[i].qh[ib];
      for (int l = 0; l < 4; ++l, y += 8) {
        // Half k = 2l, 2l + 1 of the sub-block takes bit k of qh as its index bit 8.
        const int lo = qs[2 * l] | ((qh >> (2 * l)) & 1) << 8;
        const int hi = qs[2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
        SignedGroup(db, Halves(kIQ3SGrid[lo], kIQ3SGrid[hi]), x[i].signs[4 * ib + l], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ1_S>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ1_S*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int qh = x[i].qh[ib];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = (qh & 0x8000) != 0 ? -kIQ1Delta : kIQ1Delta;
      for (int l = 0; l < 4; ++l, y += 8) {
        const int index = x[i].qs[4 * ib + l] | ((qh >> 3 * l) & 7) << 8;
        OffsetGroup(dl, delta, kIQ1SGrid[index], y);
      }
    }
  }
}

template <>
void DequantizeRow<DType::kIQ1_M>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockIQ1_M*>(src);
  float* y = dst;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint16_t w[4];  // the scales bytes as little-endian u16 words
    for (int k = 0; k < 4; ++k) w[k] = static_cast<uint16_t>(x[i].scales[2 * k] | x[i].scales[2 * k + 1] << 8);
    // The super-scale is scattered over the top nibbles of the 4 words, w[0]'s nibble lowest.
    const auto d16 =
        static_cast<uint16_t>((w[0] >> 12) | ((w[1] >> 8) & 0x00f0) | ((w[2] >> 4) & 0x0f00) | (w[3] & 0xf000));
    const float d = F16ToF32(d16);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int shift = 6 * (ib % 2);
      const float dl[2] = {d * static_cast<float>(2 * ((w[ib / 2] >> shift) & 7) + 1),
                           d * static_cast<float>(2 * ((w[ib / 2] >> (shift + 3)) & 7) + 1)};
      for (int l = 0; l < 4; ++l, y += 8) {
        const int nibble = (x[i].qh[2 * ib + l / 2] >> 4 * (l % 2)) & 0xf;
        const int index = x[i].qs[4 * ib + l] | (nibble & 7) << 8;
        const float delta = (nibble & 8) != 0 ? -kIQ1Delta : kIQ1Delta;
        OffsetGroup(dl[l / 2], delta, kIQ1SGrid[index], y);
      }
    }
  }
}

}  // namespace pocketlm::quant
