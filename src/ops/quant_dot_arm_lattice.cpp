// AArch64 SDOT kernels for the lattice i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m) for
// quant_dot_arm.cpp: each block unpacked once per group of up to 4 tokens by quant_dot_lattice.h (grid lookups, sign
// bits, scales per 16), its values made signed 16 at a time and multiplied with SDOT; per 16 values the exact integer
// sum times its scale in int32, scaled by d_w * d_a in f32 once per block, as ggml_vec_dot_<type>_q8_K sums them.
#include <cstddef>
#include <cstdint>

#include "ops/quant_dot_arm_common.h"

#if PLM_ARM_DOT_KERNELS
#include <arm_neon.h>

#include <algorithm>

#include "ops/quant_dot_lattice.h"

namespace pocketlm::arm_dot {
namespace {
namespace qd = quant_dot_internal;

// Values 16g..16g+15 of an unpacked block: magnitudes negated where their sign bit is set (|mag| <= 62).
inline int8x16_t SignedValues(const qd::LatticeBlock& blk, int g) {
  const int8x16_t mag = vreinterpretq_s8_u8(vld1q_u8(blk.mag + 16 * g));
  const uint8x16_t neg =
      ByteMask16(static_cast<uint32_t>(blk.neg[2 * g]) | static_cast<uint32_t>(blk.neg[2 * g + 1]) << 8);
  return vbslq_s8(neg, vnegq_s8(mag), mag);
}

// out[k] = dot(row w, token t0 + k) for k < kT. |sc * values . y| <= 31 * 16 * 62 * 127 per 16 values: the int32
// sum over a block cannot overflow.
template <class U, int kT>
PLM_DOTPROD void DotRowLattice(const uint8_t* w, const Acts& a, size_t t0, float* out) {
  float32x4_t acc[kT];
  for (int k = 0; k < kT; ++k) acc[k] = vdupq_n_f32(0.0f);
  qd::LatticeBlock blk;
  for (size_t b = 0; b < a.nb; ++b) {
    qd::Unpack<U>(w + b * U::kBytes, &blk);
    int32x4_t isum[kT];
    for (int k = 0; k < kT; ++k) isum[k] = vdupq_n_s32(0);
    for (int g = 0; g < 16; ++g) {
      const int8x16_t v = SignedValues(blk, g);
      for (int k = 0; k < kT; ++k) {
        const int32x4_t p = vdotq_s32(vdupq_n_s32(0), v, vld1q_s8(a.Qs(t0 + k, b) + 16 * g));
        isum[k] = vmlaq_n_s32(isum[k], p, blk.sc[g]);
      }
    }
    for (int k = 0; k < kT; ++k) acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(isum[k]), blk.d * a.D(t0 + k, b));
  }
  for (int k = 0; k < kT; ++k) out[k] = vaddvq_f32(acc[k]);
}

// Rows in tiles of 16 that stay in cache while every group of up to 4 tokens passes over them.
template <class U>
void MatMulRowsLattice(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o,
                       int64_t r0, int64_t r1) {
  using RowFn = void (*)(const uint8_t*, const Acts&, size_t, float*);
  static constexpr RowFn kRow[4] = {DotRowLattice<U, 1>, DotRowLattice<U, 2>, DotRowLattice<U, 3>, DotRowLattice<U, 4>};
  constexpr int64_t kRowTile = 16;
  float s[4];
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t re = std::min(r1, rt + kRowTile);
    for (int64_t t = 0; t < n_tokens; t += 4) {
      const int64_t nt = std::min<int64_t>(4, n_tokens - t);
      for (int64_t r = rt; r < re; ++r) {
        kRow[nt - 1](w_rows + static_cast<size_t>(r) * w_row_bytes, a, static_cast<size_t>(t), s);
        for (int64_t k = 0; k < nt; ++k) o.Store(t + k, r, s[k]);
      }
    }
  }
}

}  // namespace

bool MatMulLattice(DType wt, const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o,
                   int64_t r0, int64_t r1) {
  switch (wt) {
    case DType::kIQ2_XXS: MatMulRowsLattice<qd::UnpackIQ2_XXS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ2_XS: MatMulRowsLattice<qd::UnpackIQ2_XS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ2_S: MatMulRowsLattice<qd::UnpackIQ2_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ3_XXS: MatMulRowsLattice<qd::UnpackIQ3_XXS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ3_S: MatMulRowsLattice<qd::UnpackIQ3_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ1_S: MatMulRowsLattice<qd::UnpackIQ1_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    case DType::kIQ1_M: MatMulRowsLattice<qd::UnpackIQ1_M>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1); break;
    default: return false;
  }
  return true;
}

}  // namespace pocketlm::arm_dot
#endif  // PLM_ARM_DOT_KERNELS
