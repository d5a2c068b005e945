// What the AArch64 dot-product kernels share (quant_dot_arm.cpp: 32-value blocks, quant_dot_arm_kquants.cpp:
// k-quants): the activation view, the output, and the block decoders, which turn one weight block into signed 8-bit
// values in NEON registers in the order of the Q8_0 / Q8_1 / Q8_K activation values they multiply. Plain NEON (every
// AArch64 CPU); only the kernels, marked PLM_DOTPROD / PLM_I8MM, need the extensions. Internal to src/ops.
#pragma once

// GCC on Linux: the target attributes below are GCC's spelling (clang 14 ignores them and then lacks the intrinsics),
// and the hwcaps come from getauxval. Elsewhere the Highway kernels run.
#if defined(__aarch64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define PLM_ARM_DOT_KERNELS 1
#else
#define PLM_ARM_DOT_KERNELS 0
#endif

#if PLM_ARM_DOT_KERNELS
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/quant_dot.h"
#include "ops/quant_dot_internal.h"
#include "tensor/quant/blocks.h"

// Per function rather than -march for the whole file: everything else (and any inline function a header brings
// in) stays baseline Armv8-A code, so nothing runs dotprod / i8mm instructions unless the hwcaps said it may.
#define PLM_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define PLM_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))

namespace pocketlm::arm_dot {

// An f16 block scale as f32 by the FP unit's own conversion (FCVT, every AArch64 CPU): exact for every finite value
// and infinity (a signalling NaN comes out quiet), three instructions where the portable bit manipulation of
// quant_dot_internal::LoadF16 took about ten.
inline float LoadF16(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return h;
}

// Prepared activations (QuantActs) as the kernels read them.
struct Acts {
  const uint8_t* rows;
  size_t row_bytes, block_bytes, qs_offset, nb;
  const float* d;  // (tokens, nb) block scales
  const float* s;  // (tokens, nb) Q8_1's s (q4_1 / q5_1)
  const int8_t* Qs(size_t t, size_t b) const {
    return reinterpret_cast<const int8_t*>(rows + t * row_bytes + b * block_bytes + qs_offset);
  }
  const uint8_t* Bsums(size_t t, size_t b) const {  // Q8_K only: 16 int16, at any byte address
    return rows + t * row_bytes + b * block_bytes + offsetof(quant::BlockQ8_K, bsums);
  }
  float D(size_t t, size_t b) const { return d[t * nb + b]; }
  float S(size_t t, size_t b) const { return s[t * nb + b]; }
};

using Out = quant_dot_internal::Out;

// The 64-bit halves: zip1 -> (a[0..8), b[0..8)), zip2 -> (a[8..16), b[8..16)): SMMLA's 2x8 operand layout (row i
// of the 2x8 matrix in bytes 8i..8i+8), so SMMLA(Zip(w_r0, w_r1), Zip(y_ta, y_tb)) has (row i, token j) in lane
// 2i + j.
inline int8x16_t Zip1(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t Zip2(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// Rows [r0, r1) x every token of q4_K / q5_K / q6_K weights (quant_dot_arm_kquants.cpp); i8mm: SMMLA for pairs of
// rows x pairs of tokens.
void MatMulKQuants(DType wt, const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o,
                   int64_t r0, int64_t r1, bool i8mm);

// Rows [r0, r1) x every token of the lattice i-quants (quant_dot_arm_lattice.cpp), SDOT; false (nothing written)
// for other types.
bool MatMulLattice(DType wt, const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o,
                   int64_t r0, int64_t r1);

// Values 0..15 and 16..31 of a 32-value block.
struct Halves {
  int8x16_t lo, hi;
};

inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 0xFF in lane i where bit i of the 16-bit `bits` is set. Each byte of `bits` is broadcast to 8 lanes, then lane i
// tests bit i % 8.
inline uint8x16_t ByteMask16(uint32_t bits) {
  static constexpr uint8_t kByteOf[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bytes = vqtbl1q_u8(vreinterpretq_u8_u32(vdupq_n_u32(bits & 0xFFFF)), vld1q_u8(kByteOf));
  return vtstq_u8(bytes, vld1q_u8(kBit));
}

// 0x10 in lane i where bit i of the 16-bit `bits` is set: the 5th bit of q5_0 / q5_1 values.
inline uint8x16_t FifthBits(uint32_t bits) {
  return vandq_u8(ByteMask16(bits), vdupq_n_u8(0x10));
}

inline Halves Nibbles(const uint8_t* qs) {
  const uint8x16_t v = vld1q_u8(qs);
  return {vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(v, 4))};
}

// Every 32-value block type starts with its f16 scale d. kMin: the block also has an f16 min m whose term
// m * s (s of the Q8_1 activation block) is added per block, as in ggml_vec_dot_q4_1_q8_1.

struct ArmQ4_0 {  // x = d * (q - 8)
  static constexpr size_t kBytes = sizeof(quant::BlockQ4_0);
  static constexpr bool kMin = false;
  static Halves Values(const uint8_t* b) {
    const Halves h = Nibbles(b + offsetof(quant::BlockQ4_0, qs));
    return {vsubq_s8(h.lo, vdupq_n_s8(8)), vsubq_s8(h.hi, vdupq_n_s8(8))};
  }
};

struct ArmQ4_1 {  // x = d * q + m
  static constexpr size_t kBytes = sizeof(quant::BlockQ4_1);
  static constexpr bool kMin = true;
  static constexpr size_t kMinOffset = offsetof(quant::BlockQ4_1, m);
  static Halves Values(const uint8_t* b) { return Nibbles(b + offsetof(quant::BlockQ4_1, qs)); }
};

struct ArmQ5_0 {  // x = d * ((q | h << 4) - 16), h = bit j of qh for value j
  static constexpr size_t kBytes = sizeof(quant::BlockQ5_0);
  static constexpr bool kMin = false;
  static Halves Values(const uint8_t* b) {
    const Halves h = Nibbles(b + offsetof(quant::BlockQ5_0, qs));
    const uint32_t qh = LoadU32(b + offsetof(quant::BlockQ5_0, qh));
    const int8x16_t lo = vorrq_s8(h.lo, vreinterpretq_s8_u8(FifthBits(qh)));
    const int8x16_t hi = vorrq_s8(h.hi, vreinterpretq_s8_u8(FifthBits(qh >> 16)));
    return {vsubq_s8(lo, vdupq_n_s8(16)), vsubq_s8(hi, vdupq_n_s8(16))};
  }
};

struct ArmQ5_1 {  // x = d * (q | h << 4) + m
  static constexpr size_t kBytes = sizeof(quant::BlockQ5_1);
  static constexpr bool kMin = true;
  static constexpr size_t kMinOffset = offsetof(quant::BlockQ5_1, m);
  static Halves Values(const uint8_t* b) {
    const Halves h = Nibbles(b + offsetof(quant::BlockQ5_1, qs));
    const uint32_t qh = LoadU32(b + offsetof(quant::BlockQ5_1, qh));
    return {vorrq_s8(h.lo, vreinterpretq_s8_u8(FifthBits(qh))),
            vorrq_s8(h.hi, vreinterpretq_s8_u8(FifthBits(qh >> 16)))};
  }
};

struct ArmQ8_0 {  // x = d * q
  static constexpr size_t kBytes = sizeof(quant::BlockQ8_0);
  static constexpr bool kMin = false;
  static Halves Values(const uint8_t* b) {
    const auto* q = reinterpret_cast<const int8_t*>(b + offsetof(quant::BlockQ8_0, qs));
    return {vld1q_s8(q), vld1q_s8(q + 16)};
  }
};

struct ArmIQ4_NL {  // x = d * kIQ4NLValues[q]: one table lookup per 16 values
  static constexpr size_t kBytes = sizeof(quant::BlockIQ4_NL);
  static constexpr bool kMin = false;
  static Halves Values(const uint8_t* b) {
    const Halves h = Nibbles(b + offsetof(quant::BlockIQ4_NL, qs));
    const int8x16_t table = vld1q_s8(quant::kIQ4NLValues);
    return {vqtbl1q_s8(table, vreinterpretq_u8_s8(h.lo)), vqtbl1q_s8(table, vreinterpretq_u8_s8(h.hi))};
  }
};

// Q4_K / Q5_K sub-block j (0..7, 32 values): the low (even j) or high (odd j) nibbles of qs[32 * (j / 2) ..+32],
// plus 16 where bit j of qh[l] is set (Q5_K), as ggml_vec_dot_q4_K_q8_K / q5_K dequantize them.
template <bool kQ5>
inline Halves SubBlockQ45K(const uint8_t* qs, const uint8_t* qh, int j) {
  const uint8x16_t a = vld1q_u8(qs + 32 * (j / 2)), b = vld1q_u8(qs + 32 * (j / 2) + 16);
  uint8x16_t lo = (j & 1) ? vshrq_n_u8(a, 4) : vandq_u8(a, vdupq_n_u8(0x0F));
  uint8x16_t hi = (j & 1) ? vshrq_n_u8(b, 4) : vandq_u8(b, vdupq_n_u8(0x0F));
  if constexpr (kQ5) {
    const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1u << j)), sixteen = vdupq_n_u8(0x10);
    lo = vorrq_u8(lo, vandq_u8(vtstq_u8(vld1q_u8(qh), bit), sixteen));
    hi = vorrq_u8(hi, vandq_u8(vtstq_u8(vld1q_u8(qh + 16), bit), sixteen));
  }
  return {vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)};
}

// Q6_K: the four 16-value groups at positions 128 * half + l0 + {0, 32, 64, 96} (l0 = 0 or 16), values q - 32 with
// q = 4 low bits from ql and 2 high bits from qh (ggml_vec_dot_q6_K_q8_K_generic's a[l + 0/32/64/96]).
struct Q6Groups {
  int8x16_t v[4];
};
inline Q6Groups GroupsQ6K(const uint8_t* ql, const uint8_t* qh) {
  const uint8x16_t a = vld1q_u8(ql), b = vld1q_u8(ql + 32), h = vld1q_u8(qh);
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x30);
  const uint8x16_t q[4] = {
      vorrq_u8(vandq_u8(a, m4), vandq_u8(vshlq_n_u8(h, 4), m2)),
      vorrq_u8(vandq_u8(b, m4), vandq_u8(vshlq_n_u8(h, 2), m2)),
      vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(h, m2)),
      vorrq_u8(vshrq_n_u8(b, 4), vandq_u8(vshrq_n_u8(h, 2), m2)),
  };
  Q6Groups g;
  for (int i = 0; i < 4; ++i) g.v[i] = vsubq_s8(vreinterpretq_s8_u8(q[i]), vdupq_n_s8(32));
  return g;
}

}  // namespace pocketlm::arm_dot
#endif
