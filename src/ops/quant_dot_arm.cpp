// AArch64 dot-product kernels (quant_dot_arm.h): CPU detection, dispatch, and the 32-value-block kernels (the
// k-quants are in quant_dot_arm_kquants.cpp). Same arithmetic as the Highway kernels and ggml's NEON ones: per
// weight block the exact integer sum of (weight value x activation quant) in int32 lanes, scaled by d_w * d_a in f32
// once per block (k-quants: per sub-block scale multiplied in int32, d_w * d_a per super-block), min terms per
// block. Only the accumulation order differs from reference::QuantDot, by float rounding.
//
// SDOT (vdotq_s32): 4 lanes, each the sum of 4 int8 products. SMMLA (vmmlaq_s32): a 2x8 by 8x2 int8 matrix product
// into a 2x2 int32 tile, so two weight rows times two tokens at twice SDOT's multiplies per instruction (prefill).
// Functions that use the extensions are marked PLM_DOTPROD / PLM_I8MM (quant_dot_arm_common.h).
#include "ops/quant_dot_arm.h"

#include <algorithm>
#include <atomic>

#include "ops/quant_dot_arm_common.h"

#if PLM_ARM_DOT_KERNELS
#include <arm_neon.h>
#include <sys/auxv.h>

#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#endif

namespace pocketlm {
namespace {

std::atomic<int> g_level_cap{static_cast<int>(ArmDotLevel::kI8mm)};

ArmDotLevel DetectLevel() {
#if PLM_ARM_DOT_KERNELS
  // Linux hwcap bits (arch/arm64/include/uapi/asm/hwcap.h), spelled out for older libc headers.
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20, kHwcap2I8mm = 1ul << 13;
  if ((getauxval(AT_HWCAP) & kHwcapAsimdDp) == 0) return ArmDotLevel::kNone;
  return (getauxval(AT_HWCAP2) & kHwcap2I8mm) != 0 ? ArmDotLevel::kI8mm : ArmDotLevel::kDotProd;
#else
  return ArmDotLevel::kNone;
#endif
}

}  // namespace

ArmDotLevel DetectedArmDotLevel() {
  static const ArmDotLevel level = DetectLevel();
  return level;
}

ArmDotLevel ActiveArmDotLevel() {
  return static_cast<ArmDotLevel>(
      std::min(static_cast<int>(DetectedArmDotLevel()), g_level_cap.load(std::memory_order_relaxed)));
}

void SetArmDotLevelCap(ArmDotLevel cap) {
  g_level_cap.store(static_cast<int>(cap), std::memory_order_relaxed);
}

namespace arm_dot {

bool Handles(DType wt) {
  return GetDTypeInfo(wt).Has(kCapArmDot);
}

#if !PLM_ARM_DOT_KERNELS
bool MatMulRows(const QuantActs&, const uint8_t*, size_t, float*, int64_t, bool, int64_t, int64_t) {
  return false;
}
#else

namespace {

// ---- 32-value blocks, SDOT: out[i * kT + k] = dot(row i, token t0 + k) for kR rows x kT tokens ----------------
template <class Dec, int kR, int kT>
PLM_DOTPROD void DotTile(const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* out) {
  float32x4_t acc[kR][kT];
  float mins[kR][kT] = {};
  for (int i = 0; i < kR; ++i) {
    for (int k = 0; k < kT; ++k) acc[i][k] = vdupq_n_f32(0.0f);
  }
  for (size_t b = 0; b < a.nb; ++b) {
    int8x16_t xl[kT], xh[kT];
    float da[kT];
    for (int k = 0; k < kT; ++k) {
      const int8_t* q = a.Qs(t0 + k, b);
      xl[k] = vld1q_s8(q);
      xh[k] = vld1q_s8(q + 16);
      da[k] = a.D(t0 + k, b);
    }
    for (int i = 0; i < kR; ++i) {
      const uint8_t* blk = w + i * w_row_bytes + b * Dec::kBytes;
      const Halves v = Dec::Values(blk);
      const float dw = LoadF16(blk);
      float m = 0.0f;
      if constexpr (Dec::kMin) m = LoadF16(blk + Dec::kMinOffset);
      for (int k = 0; k < kT; ++k) {
        const int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), v.lo, xl[k]), v.hi, xh[k]);
        acc[i][k] = vfmaq_n_f32(acc[i][k], vcvtq_f32_s32(s), dw * da[k]);
        if constexpr (Dec::kMin) mins[i][k] += m * a.S(t0 + k, b);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int k = 0; k < kT; ++k) out[i * kT + k] = vaddvq_f32(acc[i][k]) + mins[i][k];
  }
}

// ---- 32-value blocks, SMMLA: 2 rows x 2 * kP tokens; out[i * 2kP + k] ---------------------------------------------
// Per block and token pair, four SMMLA give the 2x2 tile (row i, token j) in lane 2i + j.
template <class Dec, int kP>
PLM_I8MM void MmlaTile(const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* out) {
  constexpr int kT = 2 * kP;
  float32x4_t acc[kP];
  float mins[2][kT] = {};
  for (int p = 0; p < kP; ++p) acc[p] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* b0 = w + b * Dec::kBytes;
    const uint8_t* b1 = b0 + w_row_bytes;
    const Halves v0 = Dec::Values(b0), v1 = Dec::Values(b1);
    const float d0 = LoadF16(b0), d1 = LoadF16(b1);
    const int8x16_t w0 = Zip1(v0.lo, v1.lo), w1 = Zip2(v0.lo, v1.lo), w2 = Zip1(v0.hi, v1.hi), w3 = Zip2(v0.hi, v1.hi);
    for (int p = 0; p < kP; ++p) {
      const size_t ta = t0 + 2 * p;
      const int8_t* qa = a.Qs(ta, b);
      const int8_t* qb = a.Qs(ta + 1, b);
      const int8x16_t xal = vld1q_s8(qa), xah = vld1q_s8(qa + 16), xbl = vld1q_s8(qb), xbh = vld1q_s8(qb + 16);
      int32x4_t s = vmmlaq_s32(vdupq_n_s32(0), w0, Zip1(xal, xbl));
      s = vmmlaq_s32(s, w1, Zip2(xal, xbl));
      s = vmmlaq_s32(s, w2, Zip1(xah, xbh));
      s = vmmlaq_s32(s, w3, Zip2(xah, xbh));
      const float32x2_t da = {a.D(ta, b), a.D(ta + 1, b)};
      acc[p] = vfmaq_f32(acc[p], vcvtq_f32_s32(s), vcombine_f32(vmul_n_f32(da, d0), vmul_n_f32(da, d1)));
      if constexpr (Dec::kMin) {
        const float m0 = LoadF16(b0 + Dec::kMinOffset), m1 = LoadF16(b1 + Dec::kMinOffset);
        mins[0][2 * p] += m0 * a.S(ta, b);
        mins[0][2 * p + 1] += m0 * a.S(ta + 1, b);
        mins[1][2 * p] += m1 * a.S(ta, b);
        mins[1][2 * p + 1] += m1 * a.S(ta + 1, b);
      }
    }
  }
  for (int p = 0; p < kP; ++p) {
    out[2 * p] = vgetq_lane_f32(acc[p], 0) + mins[0][2 * p];
    out[2 * p + 1] = vgetq_lane_f32(acc[p], 1) + mins[0][2 * p + 1];
    out[kT + 2 * p] = vgetq_lane_f32(acc[p], 2) + mins[1][2 * p];
    out[kT + 2 * p + 1] = vgetq_lane_f32(acc[p], 3) + mins[1][2 * p + 1];
  }
}

// Rows [r, re) x tokens [t, t + kT) with kR-row tiles (one-row tiles for the rest).
template <class Dec, int kR, int kT>
void DotRows(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t t, const Out& o, int64_t r, int64_t re) {
  float s[kR * kT];
  const auto tt = static_cast<size_t>(t);
  for (; r + kR <= re; r += kR) {
    DotTile<Dec, kR, kT>(w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, tt, s);
    for (int i = 0; i < kR; ++i) {
      for (int k = 0; k < kT; ++k) o.Store(t + k, r + i, s[i * kT + k]);
    }
  }
  for (; r < re; ++r) {
    DotTile<Dec, 1, kT>(w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, tt, s);
    for (int k = 0; k < kT; ++k) o.Store(t + k, r, s[k]);
  }
}

template <class Dec, int kP>
void MmlaRows(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t t, const Out& o, int64_t r,
              int64_t re) {
  constexpr int kT = 2 * kP;
  float s[2 * kT];
  for (; r + 2 <= re; r += 2) {
    MmlaTile<Dec, kP>(w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, static_cast<size_t>(t), s);
    for (int i = 0; i < 2; ++i) {
      for (int k = 0; k < kT; ++k) o.Store(t + k, r + i, s[i * kT + k]);
    }
  }
  if (r < re) DotRows<Dec, 1, kT>(w_rows, w_row_bytes, a, t, o, r, re);
}

// Rows in tiles of 16 that stay in cache while every token group passes over them (prefill); decode (one token)
// takes 4 rows per pass, independent streams for the memory system.
template <class Dec>
void MatMulB32(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o, int64_t r0,
               int64_t r1, bool i8mm) {
  constexpr int64_t kRowTile = 16;
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t re = std::min(r1, rt + kRowTile);
    int64_t t = 0;
    if (i8mm) {
      for (; t + 4 <= n_tokens; t += 4) MmlaRows<Dec, 2>(w_rows, w_row_bytes, a, t, o, rt, re);
      if (t + 2 <= n_tokens) {
        MmlaRows<Dec, 1>(w_rows, w_row_bytes, a, t, o, rt, re);
        t += 2;
      }
    }
    for (; t + 4 <= n_tokens; t += 4) DotRows<Dec, 2, 4>(w_rows, w_row_bytes, a, t, o, rt, re);
    switch (n_tokens - t) {
      case 1: DotRows<Dec, 4, 1>(w_rows, w_row_bytes, a, t, o, rt, re); break;
      case 2: DotRows<Dec, 2, 2>(w_rows, w_row_bytes, a, t, o, rt, re); break;
      case 3: DotRows<Dec, 2, 3>(w_rows, w_row_bytes, a, t, o, rt, re); break;
      default: break;
    }
  }
}

}  // namespace

bool MatMulRows(const QuantActs& act, const uint8_t* w_rows, size_t w_row_bytes, float* y, int64_t y_stride,
                bool accumulate, int64_t r0, int64_t r1) {
  const ArmDotLevel level = ActiveArmDotLevel();
  if (level == ArmDotLevel::kNone || !Handles(act.wt)) return false;
  const DType at = GetDTypeInfo(act.wt).vec_dot_type;
  const auto& atr = quant::GetQuantTraits(at);
  Acts a;
  a.rows = act.rows;
  a.row_bytes = act.row_bytes;
  a.block_bytes = GetDTypeInfo(atr.type).type_size;
  a.qs_offset = at == DType::kQ8_0
                    ? offsetof(quant::BlockQ8_0, qs)
                    : (at == DType::kQ8_1 ? offsetof(quant::BlockQ8_1, qs) : offsetof(quant::BlockQ8_K, qs));
  a.nb = static_cast<size_t>(act.n) / GetDTypeInfo(atr.type).block_size;
  a.d = act.d.data();
  a.s = act.s.data();
  const Out o{y, y_stride, accumulate};
  const bool i8mm = level == ArmDotLevel::kI8mm;
  const int64_t nt = act.n_tokens;
  switch (act.wt) {
    case DType::kQ4_0: MatMulB32<ArmQ4_0>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    case DType::kQ4_1: MatMulB32<ArmQ4_1>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    case DType::kQ5_0: MatMulB32<ArmQ5_0>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    case DType::kQ5_1: MatMulB32<ArmQ5_1>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    case DType::kQ8_0: MatMulB32<ArmQ8_0>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    case DType::kIQ4_NL: MatMulB32<ArmIQ4_NL>(w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm); break;
    default:
      if (!MatMulLattice(act.wt, w_rows, w_row_bytes, a, nt, o, r0, r1)) {
        MatMulKQuants(act.wt, w_rows, w_row_bytes, a, nt, o, r0, r1, i8mm);
      }
      break;
  }
  return true;
}

#endif  // PLM_ARM_DOT_KERNELS

}  // namespace arm_dot
}  // namespace pocketlm
