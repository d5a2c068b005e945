// Unpacking of the lattice i-quant blocks (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M; layouts in
// tensor/quant/blocks.h) into 8-bit magnitudes, sign bits and integer scales per 16 values, the form every integer
// kernel multiplies (quant_dot_decoders-inl.h, quant_dot_u8-inl.h, quant_dot_arm_lattice.cpp). Per super-block:
//
//   dot(block, Q8_K block y) = d * d_y * sum_g sc[g] * sum_{j < 16} value[16 g + j] * y.qs[16 g + j]
//
// the integer of ggml's ggml_vec_dot_<type>_q8_K sums, times its float factor (0.125 for IQ2, 0.25 for IQ3_XXS)
// folded into d. IQ1's delta is folded into the values: ggml computes d * d_y * (sumi + 0.125 * sumi1) with sumi1 the
// delta-signed activation sums, which is d / 8 * d_y * sum (8 * grid + delta) * y: values 8 * grid +- 1 in -9..9,
// no separate bsums term. Magnitudes are at most 62 (IQ3_XXS), so |value * y| pairs fit vpmaddubsw's int16 and
// |value * sc| fits int16.
//
// The grid lookups stay scalar: one 64-bit load per group of 8 values from a codebook of 2-16 KiB that stays in L1.
// Internal to src/ops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/quant_dot_internal.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"

namespace pocketlm::quant_dot_internal {

// One unpacked super-block: value i is (bit i % 8 of neg[i / 8] ? -1 : 1) * mag[i] times the integer scale
// sc[i / 16]; d is the f32 factor of the block's integer sum (d_y excluded). Magnitudes and signs apart because
// that is how the kernels use them: x86 multiplies the unsigned magnitudes with sign-flipped activations
// (vpmaddubsw, as ggml's AVX2 kernels do with _mm256_sign_epi8), the int16 and SDOT paths negate the values.
struct LatticeBlock {
  float d;
  int8_t sc[16];    // odd, 1..31
  uint8_t neg[32];  // one bit per value
  alignas(64) uint8_t mag[256];
};

inline void StoreGroup(uint64_t g, uint8_t* dst) {
  std::memcpy(dst, &g, 8);
}

inline uint32_t LoadLE32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Two 4-value IQ3 grid entries as one group of 8.
inline uint64_t Iq3Group(uint32_t lo, uint32_t hi) {
  return static_cast<uint64_t>(lo) | static_cast<uint64_t>(hi) << 32;
}

// One group of 8 values: magnitudes in the bytes of `mag` (value j in byte j), bit j of `neg` set where value j is
// negative.
struct LatticeGroup {
  uint64_t mag;
  uint32_t neg;
};

// 16 int8 scales (one per 16 values) as two little-endian words, built in registers.
struct LatticeScales {
  uint64_t lo, hi;
};

// An IQ1 group: values 8 * grid + delta (grid bytes -1, 0, 1; delta +-1) as magnitudes and sign bits. 8 * grid is a
// byte shift (low 3 bits then zero); +-1 per byte is a SWAR add (high bits added apart, so no carry crosses bytes);
// no value is 0, so |v| = (v ^ m) + 1 where m is 0xFF for the negative bytes, whose sign bits gather into one byte
// by the multiply of a movemask.
inline LatticeGroup Iq1Group(uint64_t entry, bool negative_delta) {
  constexpr uint64_t kHigh = 0x8080808080808080ull, kLow = 0x0101010101010101ull;
  const uint64_t g8 = (entry << 3) & 0xF8F8F8F8F8F8F8F8ull;
  const uint64_t delta = negative_delta ? ~uint64_t{0} : kLow;
  const uint64_t v = ((g8 & ~kHigh) + (delta & ~kHigh)) ^ ((g8 ^ delta) & kHigh);
  const uint64_t sign = v & kHigh;
  const uint64_t m = (sign >> 7) * 0xFF;
  return {(v ^ m) + (m & kLow), static_cast<uint32_t>((sign * 0x0002040810204081ull) >> 56)};
}

// Scale `ls` for the 32 values of sub-block ib (bytes 2ib, 2ib + 1 of the 16).
inline void SetScales32(LatticeScales* s, int ib, uint64_t ls) {
  const uint64_t two = ls * 0x0101u;
  if (ib < 4) {
    s->lo |= two << (16 * ib);
  } else {
    s->hi |= two << (16 * (ib - 4));
  }
}

// IQ2_XS / IQ2_S: two 4-bit scales per sub-block, the low nibble for values 0-15, the high one for 16-31: 2s + 1 for
// all 16 nibbles at once (no carries: <= 31), then the bytes interleaved low, high.
inline LatticeScales NibbleScales16(const uint8_t* scales) {
  constexpr uint64_t kNibbles = 0x0F0F0F0F0F0F0F0Full, kOnes = 0x0101010101010101ull;
  uint64_t x;
  std::memcpy(&x, scales, 8);
  const uint64_t lo = ((x & kNibbles) << 1) + kOnes, hi = (((x >> 4) & kNibbles) << 1) + kOnes;
  const auto spread = [](uint64_t v) {  // bytes 0..3 of v to bytes 0, 2, 4, 6
    v &= 0xFFFFFFFFull;
    v = (v | v << 16) & 0x0000FFFF0000FFFFull;
    return (v | v << 8) & 0x00FF00FF00FF00FFull;
  };
  return {spread(lo) | spread(hi) << 8, spread(lo >> 32) | spread(hi >> 32) << 8};
}

// ---- Per type, after ggml's ggml_vec_dot_<type>_q8_K_generic: kBytes; D(block): the f32 factor; Scales(block);
// Group(block, g) for the groups g = 0..31 of 8 values -------------------------------------------------------------

struct UnpackIQ2_XXS {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ2_XXS);
  // Sub-block ib: two u32 words at qs + 8ib: 4 grid indices; 4 x 7 sign bits and the scale in bits 28-31.
  static const uint8_t* Sub(const uint8_t* b, int ib) { return b + offsetof(quant::BlockIQ2_XXS, qs) + 8 * ib; }
  static float D(const uint8_t* b) { return 0.125f * LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) {
    LatticeScales s{0, 0};
    for (int ib = 0; ib < 8; ++ib) SetScales32(&s, ib, 2 * (LoadLE32(Sub(b, ib) + 4) >> 28) + 1);
    return s;
  }
  static LatticeGroup Group(const uint8_t* b, int g) {
    const uint8_t* sub = Sub(b, g / 4);
    return {quant::kIQ2XXSGrid[sub[g % 4]], quant::kIQ2XSSigns[(LoadLE32(sub + 4) >> 7 * (g % 4)) & 127]};
  }
};

struct UnpackIQ2_XS {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ2_XS);
  static float D(const uint8_t* b) { return 0.125f * LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) { return NibbleScales16(b + offsetof(quant::BlockIQ2_XS, scales)); }
  static LatticeGroup Group(const uint8_t* b, int g) {  // u16: 9-bit index | 7 sign bits << 9
    const auto q = static_cast<uint32_t>(LoadI16(b + offsetof(quant::BlockIQ2_XS, qs) + 2 * g)) & 0xFFFF;
    return {quant::kIQ2XSGrid[q & 511], quant::kIQ2XSSigns[q >> 9]};
  }
};

struct UnpackIQ2_S {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ2_S);
  static float D(const uint8_t* b) { return 0.125f * LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) { return NibbleScales16(b + offsetof(quant::BlockIQ2_S, scales)); }
  static LatticeGroup Group(const uint8_t* b, int g) {  // index bits 8-9 in qh, plain sign bytes after the indices
    const uint8_t* qs = b + offsetof(quant::BlockIQ2_S, qs);
    const int index = qs[g] | ((b[offsetof(quant::BlockIQ2_S, qh) + g / 4] >> (2 * (g % 4))) & 3) << 8;
    return {quant::kIQ2SGrid[index], qs[32 + g]};
  }
};

struct UnpackIQ3_XXS {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ3_XXS);
  // The scale-and-sign word of sub-block ib, as IQ2_XXS's second word.
  static uint32_t Meta(const uint8_t* b, int ib) {
    return LoadLE32(b + offsetof(quant::BlockIQ3_XXS, qs) + 64 + 4 * ib);
  }
  static float D(const uint8_t* b) { return 0.25f * LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) {
    LatticeScales s{0, 0};
    for (int ib = 0; ib < 8; ++ib) SetScales32(&s, ib, 2 * (Meta(b, ib) >> 28) + 1);
    return s;
  }
  static LatticeGroup Group(const uint8_t* b, int g) {  // two 4-value halves
    const uint8_t* h = b + offsetof(quant::BlockIQ3_XXS, qs) + 2 * g;
    return {Iq3Group(quant::kIQ3XXSGrid[h[0]], quant::kIQ3XXSGrid[h[1]]),
            quant::kIQ2XSSigns[(Meta(b, g / 4) >> 7 * (g % 4)) & 127]};
  }
};

struct UnpackIQ3_S {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ3_S);
  static float D(const uint8_t* b) { return LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) {  // 4-bit s per sub-block, two per byte
    LatticeScales s{0, 0};
    for (int ib = 0; ib < 8; ++ib) {
      SetScales32(&s, ib, 2 * ((b[offsetof(quant::BlockIQ3_S, scales) + ib / 2] >> 4 * (ib % 2)) & 0xf) + 1);
    }
    return s;
  }
  // Halves 2l, 2l + 1 of group l of sub-block ib take bits 2l, 2l + 1 of qh[ib] as their index bit 8.
  static LatticeGroup Group(const uint8_t* b, int g) {
    const uint8_t* qs = b + offsetof(quant::BlockIQ3_S, qs) + 2 * g;
    const int qh = b[offsetof(quant::BlockIQ3_S, qh) + g / 4], l = g % 4;
    const int lo = qs[0] | ((qh << (8 - 2 * l)) & 256), hi = qs[1] | ((qh << (7 - 2 * l)) & 256);
    return {Iq3Group(quant::kIQ3SGrid[lo], quant::kIQ3SGrid[hi]), b[offsetof(quant::BlockIQ3_S, signs) + g]};
  }
};

struct UnpackIQ1_S {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ1_S);
  // Sub-block ib's u16: index bits 8-10 of group l at 3l, scale at 12-14, delta sign at 15.
  static uint32_t Qh(const uint8_t* b, int ib) {
    return static_cast<uint32_t>(LoadI16(b + offsetof(quant::BlockIQ1_S, qh) + 2 * ib)) & 0xFFFF;
  }
  static float D(const uint8_t* b) { return 0.125f * LoadF16(b); }
  static LatticeScales Scales(const uint8_t* b) {
    LatticeScales s{0, 0};
    for (int ib = 0; ib < 8; ++ib) SetScales32(&s, ib, 2 * ((Qh(b, ib) >> 12) & 7) + 1);
    return s;
  }
  static LatticeGroup Group(const uint8_t* b, int g) {
    const uint32_t qh = Qh(b, g / 4);
    const uint64_t entry = quant::kIQ1SGrid[b[offsetof(quant::BlockIQ1_S, qs) + g] | ((qh >> 3 * (g % 4)) & 7) << 8];
    return Iq1Group(entry, (qh & 0x8000) != 0);
  }
};

struct UnpackIQ1_M {
  static constexpr size_t kBytes = sizeof(quant::BlockIQ1_M);
  // The scales bytes as 4 u16 words: 3-bit scales per 16 values, the f16 d in the top nibbles (w[0]'s lowest).
  static uint64_t Words(const uint8_t* b) {
    uint64_t w;
    std::memcpy(&w, b + offsetof(quant::BlockIQ1_M, scales), 8);
    return w;
  }
  static float D(const uint8_t* b) {
    const uint64_t w = Words(b);
    const auto d16 =
        static_cast<uint16_t>(((w >> 12) & 0xf) | ((w >> 24) & 0xf0) | ((w >> 36) & 0xf00) | ((w >> 48) & 0xf000));
    return 0.125f * F16ToF32(d16);
  }
  static LatticeScales Scales(const uint8_t* b) {
    const uint64_t w = Words(b);
    LatticeScales s{0, 0};
    for (int h = 0; h < 16; ++h) {
      const uint64_t ls = 2 * ((w >> (16 * (h / 4) + 3 * (h % 4))) & 7) + 1;
      (h < 8 ? s.lo : s.hi) |= ls << (8 * (h % 8));
    }
    return s;
  }
  static LatticeGroup Group(const uint8_t* b, int g) {
    const int nibble = (b[offsetof(quant::BlockIQ1_M, qh) + g / 2] >> (4 * (g % 2))) & 0xf;  // index bits 8-10, sign
    return Iq1Group(quant::kIQ1SGrid[b[offsetof(quant::BlockIQ1_M, qs) + g] | (nibble & 7) << 8], (nibble & 8) != 0);
  }
};

// Block b of type U unpacked into memory (the int16 path, SDOT, and prefill tiles).
template <class U>
inline void Unpack(const uint8_t* b, LatticeBlock* out) {
  out->d = U::D(b);
  const LatticeScales s = U::Scales(b);
  std::memcpy(out->sc, &s.lo, 8);
  std::memcpy(out->sc + 8, &s.hi, 8);
  for (int g = 0; g < 32; ++g) {
    const LatticeGroup grp = U::Group(b, g);
    StoreGroup(grp.mag, out->mag + 8 * g);
    out->neg[g] = static_cast<uint8_t>(grp.neg);
  }
}

}  // namespace pocketlm::quant_dot_internal
