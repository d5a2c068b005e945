// Scalar pieces shared by the quantized dot-product kernels (quant_dot.cpp) and their references
// (quant_dot_reference.cpp): unaligned field reads and the scale unpacking of ggml's k-quant dot products.
// Internal to src/ops.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/half.h"

namespace pocketlm::quant_dot_internal {

// Where a kernel writes: y[t * y_stride + r] for token t and weight row r, set or (accumulate) added to.
struct Out {
  float* y;
  int64_t y_stride;
  bool accumulate;
  void Store(int64_t t, int64_t r, float v) const {
    float& dst = y[t * y_stride + r];
    dst = accumulate ? dst + v : v;
  }
};

// Fields of blocks that may sit at any byte address.
// f16 -> f32 equal to F16ToF32 for every encoding, branch-free for finite values (the kernels convert one scale per
// block): exponent|mantissa shifted into f32 position and scaled by 2^112 rebiases normals and normalizes
// subnormals exactly; infinities and NaNs take the slow path.
inline float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  if ((h & 0x7C00) == 0x7C00) return F16ToF32(h);
  const float mag = BitsToFloat(static_cast<uint32_t>(h & 0x7FFF) << 13) * 0x1p112f;
  return BitsToFloat(FloatToBits(mag) | (static_cast<uint32_t>(h & 0x8000) << 16));
}
inline float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
inline int LoadI16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The 16 6-bit scales of Q3_K (still biased by 32), as the kmask1/kmask2 shuffle of
// ggml_vec_dot_q3_K_q8_K_generic leaves them.
inline void UnpackQ3Scales(const uint8_t* packed, int8_t* scales) {
  uint32_t aux[4];
  std::memcpy(aux, packed, 12);
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  std::memcpy(scales, aux, 16);
}

// The 8 6-bit scales and 8 mins of Q4_K/Q5_K (the kmask1..3 shuffle of ggml_vec_dot_q4_K_q8_K_generic).
inline void UnpackK4Scales(const uint8_t* packed, uint8_t* scales, uint8_t* mins) {
  uint32_t utmp[4];
  std::memcpy(utmp, packed, 12);
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  utmp[3] = ((utmp[2] >> 4) & kmask2) | (((utmp[1] >> 6) & kmask3) << 4);
  const uint32_t uaux = utmp[1] & kmask1;
  utmp[1] = (utmp[2] & kmask2) | (((utmp[0] >> 6) & kmask3) << 4);
  utmp[2] = uaux;
  utmp[0] &= kmask1;
  std::memcpy(scales, utmp, 8);
  std::memcpy(mins, utmp + 2, 8);
}

// 6-bit sub-block scales of IQ4_XS, unbiased (ls - 32), from ggml_vec_dot_iq4_xs_q8_K_generic.
inline void UnpackIQ4XSScales(const uint8_t* scales_h, const uint8_t* scales_l, int* ls) {
  uint16_t h;
  std::memcpy(&h, scales_h, 2);
  for (int ib = 0; ib < 8; ++ib) {
    ls[ib] = (((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((h >> 2 * ib) & 3) << 4)) - 32;
  }
}

}  // namespace pocketlm::quant_dot_internal
