// Scalar IEEE binary16 and bfloat16 conversions (bit exact, round to nearest even). SIMD paths in src/ops use
// Highway's conversions and are tested against these.
#pragma once

#include <cstdint>
#include <cstring>

namespace pocketlm {

inline float BitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t FloatToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0) {
    // zero or subnormal: value = man * 2^-24
    float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return BitsToFloat(sign | 0x7F800000 | (man << 13));  // inf / nan
  return BitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
}

inline uint16_t F32ToF16(float f) {
  uint32_t x = FloatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  x &= 0x7FFFFFFF;
  if (x > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00);   // nan
  if (x >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // overflow (after rounding) -> inf
  if (x < 0x38800000) {
    // subnormal or zero in half: round x * 2^24 to an integer, nearest even
    float v = BitsToFloat(x) * 16777216.0f;
    auto m = static_cast<uint32_t>(v);
    float frac = v - static_cast<float>(m);
    if (frac > 0.5f || (frac == 0.5f && (m & 1))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  // normal: rebias exponent, round mantissa from 23 to 10 bits, nearest even
  uint32_t r = x - 0x38000000;
  r += 0xFFF + ((r >> 13) & 1);
  return static_cast<uint16_t>(sign | (r >> 13));
}

inline float BF16ToF32(uint16_t b) {
  return BitsToFloat(static_cast<uint32_t>(b) << 16);
}

inline uint16_t F32ToBF16(float f) {
  uint32_t x = FloatToBits(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet nan
  x += 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace pocketlm
