// AArch64 k-quant kernels (q4_K, q5_K, q6_K) for quant_dot_arm.cpp: SDOT for one row x up to 4 tokens, SMMLA for
// two rows x two tokens (i8mm). Per super-block the exact integer sum of sub-block scale x (values . activations)
// in int32, scaled by d_w * d_a in f32 once per super-block; min terms from Q8_K's bsums, as in ggml's
// ggml_vec_dot_q4_K_q8_K / q5_K / q6_K.
#include <cstddef>
#include <cstdint>

#include "ops/quant_dot_arm_common.h"

#if PLM_ARM_DOT_KERNELS
#include <arm_neon.h>

#include <algorithm>
#include <type_traits>

#include "ops/quant_dot_internal.h"
#include "tensor/quant/blocks.h"

namespace pocketlm::arm_dot {
namespace {
namespace qd = quant_dot_internal;

// ---- k-quants, SDOT: one row x kT tokens --------------------------------------------------------------------------

// sum_j mins[j] * (bsums[2j] + bsums[2j + 1]): the min term of Q4_K / Q5_K per super-block.
inline int32_t MinTerm(const uint8_t* mins, const uint8_t* bsums) {
  const int16x8_t pairs = vpaddq_s16(vreinterpretq_s16_u8(vld1q_u8(bsums)), vreinterpretq_s16_u8(vld1q_u8(bsums + 16)));
  const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins)));
  return vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(pairs), vget_low_s16(m)), vmull_high_s16(pairs, m)));
}

// Q4_K / Q5_K (ggml_vec_dot_q4_K_q8_K / q5_K): d * d_a * sum_j sc[j] * (values_j . y_j) - dmin * d_a * MinTerm.
// |sc[j] * values_j . y_j| <= 63 * 32 * 31 * 127: the int32 sum over 8 sub-blocks cannot overflow.
template <bool kQ5, int kT>
PLM_DOTPROD void DotRowQ45K(const uint8_t* w, const Acts& a, size_t t0, float* out) {
  using B = std::conditional_t<kQ5, quant::BlockQ5_K, quant::BlockQ4_K>;
  float32x4_t acc[kT];
  float mins[kT] = {};
  for (int k = 0; k < kT; ++k) acc[k] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * sizeof(B);
    uint8_t sc[8], mn[8];
    qd::UnpackK4Scales(blk + offsetof(B, scales), sc, mn);
    const uint8_t* qh = nullptr;
    if constexpr (kQ5) qh = blk + offsetof(quant::BlockQ5_K, qh);
    int32x4_t isum[kT];
    for (int k = 0; k < kT; ++k) isum[k] = vdupq_n_s32(0);
    for (int j = 0; j < 8; ++j) {
      const Halves v = SubBlockQ45K<kQ5>(blk + offsetof(B, qs), qh, j);
      for (int k = 0; k < kT; ++k) {
        const int8_t* y = a.Qs(t0 + k, b) + 32 * j;
        const int32x4_t p = vdotq_s32(vdotq_s32(vdupq_n_s32(0), v.lo, vld1q_s8(y)), v.hi, vld1q_s8(y + 16));
        isum[k] = vmlaq_n_s32(isum[k], p, sc[j]);
      }
    }
    const float d = LoadF16(blk + offsetof(B, d)), dmin = LoadF16(blk + offsetof(B, dmin));
    for (int k = 0; k < kT; ++k) {
      const float da = a.D(t0 + k, b);
      acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(isum[k]), d * da);
      mins[k] -= dmin * da * static_cast<float>(MinTerm(mn, a.Bsums(t0 + k, b)));
    }
  }
  for (int k = 0; k < kT; ++k) out[k] = vaddvq_f32(acc[k]) + mins[k];
}

// Q6_K (ggml_vec_dot_q6_K_q8_K): d * d_a * sum_g sc[g] * (values_g . y_g) over 16 groups of 16.
// |sc * values . y| <= 128 * 16 * 32 * 127 per group: the int32 sum over 16 groups cannot overflow.
template <int kT>
PLM_DOTPROD void DotRowQ6K(const uint8_t* w, const Acts& a, size_t t0, float* out) {
  using quant::BlockQ6_K;
  float32x4_t acc[kT];
  for (int k = 0; k < kT; ++k) acc[k] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * sizeof(BlockQ6_K);
    const auto* sc = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ6_K, scales));
    int32x4_t isum[kT];
    for (int k = 0; k < kT; ++k) isum[k] = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      for (int l0 = 0; l0 < 32; l0 += 16) {
        const Q6Groups g =
            GroupsQ6K(blk + offsetof(BlockQ6_K, ql) + 64 * half + l0, blk + offsetof(BlockQ6_K, qh) + 32 * half + l0);
        for (int i = 0; i < 4; ++i) {
          const int pos = 128 * half + 32 * i + l0;  // position of the group in the super-block
          for (int k = 0; k < kT; ++k) {
            const int32x4_t p = vdotq_s32(vdupq_n_s32(0), g.v[i], vld1q_s8(a.Qs(t0 + k, b) + pos));
            isum[k] = vmlaq_n_s32(isum[k], p, sc[pos / 16]);
          }
        }
      }
    }
    const float d = LoadF16(blk + offsetof(BlockQ6_K, d));
    for (int k = 0; k < kT; ++k) acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(isum[k]), d * a.D(t0 + k, b));
  }
  for (int k = 0; k < kT; ++k) out[k] = vaddvq_f32(acc[k]);
}

template <int kT>
void DotRowK(DType wt, const uint8_t* w, const Acts& a, size_t t0, float* out) {
  if (wt == DType::kQ4_K) return DotRowQ45K<false, kT>(w, a, t0, out);
  if (wt == DType::kQ5_K) return DotRowQ45K<true, kT>(w, a, t0, out);
  return DotRowQ6K<kT>(w, a, t0, out);
}

// ---- k-quants, SMMLA: two rows x two tokens; out = {(r0, ta), (r0, tb), (r1, ta), (r1, tb)} --------------------

// Per-lane sub-block scales of the 2x2 tile: sc0 for row 0's lanes, sc1 for row 1's.
inline int32x4_t TileScales(int sc0, int sc1) {
  return vcombine_s32(vdup_n_s32(sc0), vdup_n_s32(sc1));
}

// d_w * d_a per lane of the 2x2 tile.
inline float32x4_t TileD(float d0, float d1, float da, float db) {
  const float32x2_t dt = {da, db};
  return vcombine_f32(vmul_n_f32(dt, d0), vmul_n_f32(dt, d1));
}

// 32 values of rows 0 / 1 times 32 of tokens a / b (four SMMLA of 8 values each).
PLM_I8MM inline int32x4_t Mmla32(const Halves& v0, const Halves& v1, const int8_t* ya, const int8_t* yb) {
  const int8x16_t al = vld1q_s8(ya), ah = vld1q_s8(ya + 16), bl = vld1q_s8(yb), bh = vld1q_s8(yb + 16);
  int32x4_t s = vmmlaq_s32(vdupq_n_s32(0), Zip1(v0.lo, v1.lo), Zip1(al, bl));
  s = vmmlaq_s32(s, Zip2(v0.lo, v1.lo), Zip2(al, bl));
  s = vmmlaq_s32(s, Zip1(v0.hi, v1.hi), Zip1(ah, bh));
  return vmmlaq_s32(s, Zip2(v0.hi, v1.hi), Zip2(ah, bh));
}

template <bool kQ5>
PLM_I8MM void MmlaQ45K(const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* out) {
  using B = std::conditional_t<kQ5, quant::BlockQ5_K, quant::BlockQ4_K>;
  float32x4_t acc = vdupq_n_f32(0.0f);
  float mins[4] = {};
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* b0 = w + b * sizeof(B);
    const uint8_t* b1 = b0 + w_row_bytes;
    uint8_t sc0[8], mn0[8], sc1[8], mn1[8];
    qd::UnpackK4Scales(b0 + offsetof(B, scales), sc0, mn0);
    qd::UnpackK4Scales(b1 + offsetof(B, scales), sc1, mn1);
    const uint8_t* qh0 = nullptr;
    const uint8_t* qh1 = nullptr;
    if constexpr (kQ5) qh0 = b0 + offsetof(quant::BlockQ5_K, qh), qh1 = b1 + offsetof(quant::BlockQ5_K, qh);
    const int8_t* ya = a.Qs(t0, b);
    const int8_t* yb = a.Qs(t0 + 1, b);
    int32x4_t isum = vdupq_n_s32(0);
    for (int j = 0; j < 8; ++j) {
      const Halves v0 = SubBlockQ45K<kQ5>(b0 + offsetof(B, qs), qh0, j);
      const Halves v1 = SubBlockQ45K<kQ5>(b1 + offsetof(B, qs), qh1, j);
      isum = vmlaq_s32(isum, Mmla32(v0, v1, ya + 32 * j, yb + 32 * j), TileScales(sc0[j], sc1[j]));
    }
    const float d0 = LoadF16(b0 + offsetof(B, d)), d1 = LoadF16(b1 + offsetof(B, d));
    const float dmin0 = LoadF16(b0 + offsetof(B, dmin)), dmin1 = LoadF16(b1 + offsetof(B, dmin));
    const float da = a.D(t0, b), db = a.D(t0 + 1, b);
    acc = vfmaq_f32(acc, vcvtq_f32_s32(isum), TileD(d0, d1, da, db));
    const uint8_t* bsa = a.Bsums(t0, b);
    const uint8_t* bsb = a.Bsums(t0 + 1, b);
    mins[0] -= dmin0 * da * static_cast<float>(MinTerm(mn0, bsa));
    mins[1] -= dmin0 * db * static_cast<float>(MinTerm(mn0, bsb));
    mins[2] -= dmin1 * da * static_cast<float>(MinTerm(mn1, bsa));
    mins[3] -= dmin1 * db * static_cast<float>(MinTerm(mn1, bsb));
  }
  float lanes[4];
  vst1q_f32(lanes, acc);
  for (int i = 0; i < 4; ++i) out[i] = lanes[i] + mins[i];
}

PLM_I8MM void MmlaQ6K(const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* out) {
  using quant::BlockQ6_K;
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* b0 = w + b * sizeof(BlockQ6_K);
    const uint8_t* b1 = b0 + w_row_bytes;
    const auto* sc0 = reinterpret_cast<const int8_t*>(b0 + offsetof(BlockQ6_K, scales));
    const auto* sc1 = reinterpret_cast<const int8_t*>(b1 + offsetof(BlockQ6_K, scales));
    const int8_t* ya = a.Qs(t0, b);
    const int8_t* yb = a.Qs(t0 + 1, b);
    int32x4_t isum = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      for (int l0 = 0; l0 < 32; l0 += 16) {
        const size_t ql = offsetof(BlockQ6_K, ql) + 64 * half + l0, qh = offsetof(BlockQ6_K, qh) + 32 * half + l0;
        const Q6Groups g0 = GroupsQ6K(b0 + ql, b0 + qh), g1 = GroupsQ6K(b1 + ql, b1 + qh);
        for (int i = 0; i < 4; ++i) {
          const int pos = 128 * half + 32 * i + l0;  // 16 values: two SMMLA of 8
          const int8x16_t al = vld1q_s8(ya + pos), bl = vld1q_s8(yb + pos);
          int32x4_t s = vmmlaq_s32(vdupq_n_s32(0), Zip1(g0.v[i], g1.v[i]), Zip1(al, bl));
          s = vmmlaq_s32(s, Zip2(g0.v[i], g1.v[i]), Zip2(al, bl));
          isum = vmlaq_s32(isum, s, TileScales(sc0[pos / 16], sc1[pos / 16]));
        }
      }
    }
    const float d0 = LoadF16(b0 + offsetof(BlockQ6_K, d)), d1 = LoadF16(b1 + offsetof(BlockQ6_K, d));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(isum), TileD(d0, d1, a.D(t0, b), a.D(t0 + 1, b)));
  }
  vst1q_f32(out, acc);
}

void MmlaRowsK(DType wt, const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* out) {
  if (wt == DType::kQ4_K) return MmlaQ45K<false>(w, w_row_bytes, a, t0, out);
  if (wt == DType::kQ5_K) return MmlaQ45K<true>(w, w_row_bytes, a, t0, out);
  return MmlaQ6K(w, w_row_bytes, a, t0, out);
}

}  // namespace

// Rows in tiles of 16 that stay in cache while every token group passes over them (prefill): pairs of tokens x
// pairs of rows with SMMLA (i8mm), then the rest in groups of up to 4 tokens sharing each decoded sub-block (SDOT).
void MatMulKQuants(DType wt, const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o,
                   int64_t r0, int64_t r1, bool i8mm) {
  constexpr int64_t kRowTile = 16;
  float s[4];
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t re = std::min(r1, rt + kRowTile);
    int64_t t = 0;
    for (; i8mm && t + 2 <= n_tokens; t += 2) {
      const auto tt = static_cast<size_t>(t);
      int64_t r = rt;
      for (; r + 2 <= re; r += 2) {
        MmlaRowsK(wt, w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, tt, s);
        for (int i = 0; i < 4; ++i) o.Store(t + i % 2, r + i / 2, s[i]);
      }
      for (; r < re; ++r) {
        DotRowK<2>(wt, w_rows + static_cast<size_t>(r) * w_row_bytes, a, tt, s);
        for (int k = 0; k < 2; ++k) o.Store(t + k, r, s[k]);
      }
    }
    for (; t < n_tokens; t += 4) {
      const int64_t nt = std::min<int64_t>(4, n_tokens - t);
      const auto tt = static_cast<size_t>(t);
      for (int64_t r = rt; r < re; ++r) {
        const uint8_t* w = w_rows + static_cast<size_t>(r) * w_row_bytes;
        switch (nt) {
          case 1: DotRowK<1>(wt, w, a, tt, s); break;
          case 2: DotRowK<2>(wt, w, a, tt, s); break;
          case 3: DotRowK<3>(wt, w, a, tt, s); break;
          default: DotRowK<4>(wt, w, a, tt, s); break;
        }
        for (int64_t k = 0; k < nt; ++k) o.Store(t + k, r, s[k]);
      }
    }
  }
}

}  // namespace pocketlm::arm_dot
#endif  // PLM_ARM_DOT_KERNELS
