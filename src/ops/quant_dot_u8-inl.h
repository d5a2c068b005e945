// Byte path of the quantized dot products for AVX2 / AVX-512 (included by quant_dot.cpp per target, after
// quant_dot_decoders-inl.h). Highway 1.0.3 has no 8-bit multiply-add, so this one op is written with the x86
// intrinsic ggml's AVX2 k-quant kernels use (vpmaddubsw: unsigned 8-bit weights times signed 8-bit activations,
// adjacent pairs summed to int16, then vpmaddwd by the per-pair sub-block scale). A chunk is 32 (AVX2) or 64
// (AVX-512) values, twice the int16 path's, and the activations stay 8-bit. Weights must be unsigned: q4_K as is
// (its mins go through bsums as before), q6_K as q + 32 with the offset 32 * sum(sc * bsums) subtracted from the
// exact integer block sum (ggml_vec_dot_q6_K_q8_K, AVX2, does the same with q8sums).
// Other targets and types use the int16 path; PLM_QUANT_DOT_U8 says whether this one exists for HWY_TARGET
// (compile with -DPLM_QUANT_DOT_NO_U8 to measure the int16 path on x86).
#if defined(POCKETLM_OPS_QUANT_DOT_U8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_QUANT_DOT_U8_INL_H_
#undef POCKETLM_OPS_QUANT_DOT_U8_INL_H_
#else
#define POCKETLM_OPS_QUANT_DOT_U8_INL_H_
#endif

#undef PLM_QUANT_DOT_U8
#if (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL) && !defined(PLM_QUANT_DOT_NO_U8)
#define PLM_QUANT_DOT_U8 1
#else
#define PLM_QUANT_DOT_U8 0
#endif

#if PLM_QUANT_DOT_U8
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "ops/quant_dot_internal.h"
#include "tensor/quant/blocks.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace qdec {

// Full vectors: 32 bytes on AVX2, 64 on AVX-512.
using DB = hn::ScalableTag<uint8_t>;
using DBI8 = hn::ScalableTag<int8_t>;
using DB16 = hn::ScalableTag<int16_t>;
using DB32 = hn::ScalableTag<int32_t>;
using DBF = hn::ScalableTag<float>;
using VB = hn::Vec<DB>;
using VB32 = hn::Vec<DB32>;

// acc + sum over each 4 consecutive lanes of u * s * sc (sc per pair of lanes): vpmaddubsw then vpmaddwd. Exact
// while |u0 s0 + u1 s1| < 2^15: u <= 63 and |s| <= 127 here.
HWY_INLINE VB32 MulAddU8I8(VB u, hn::Vec<DBI8> s, hn::Vec<DB16> sc, VB32 acc) {
#if HWY_TARGET == HWY_AVX2
  return VB32{_mm256_add_epi32(acc.raw, _mm256_madd_epi16(_mm256_maddubs_epi16(u.raw, s.raw), sc.raw))};
#else
  return VB32{_mm512_add_epi32(acc.raw, _mm512_madd_epi16(_mm512_maddubs_epi16(u.raw, s.raw), sc.raw))};
#endif
}

// Bytes p[0..32) in both halves of an AVX-512 vector (lanes 0-31 and 32-63); on AVX2 just the 32 bytes.
HWY_INLINE VB Load32Twice(const uint8_t* p) {
  const DB d;
  if (hn::Lanes(d) == 32) return hn::LoadU(d, p);
  const hn::Half<DB> dh;
  const auto h = hn::LoadU(dh, p);
  return hn::Combine(d, h, h);
}

// q4_K: q in 0..15, sub-blocks of 32 (ggml_vec_dot_q4_K_q8_K).
struct DecQ4_KU8 {
  static constexpr size_t kBytes = sizeof(BlockQ4_K);
  static constexpr bool kOffset = false;
  using State = DecQ45_K<false>::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return DecQ45_K<false>::Prepare(b); }
  // Pair lane p of chunk j has sub-block (j + 2p) / 32: lanes 16..31 are the next sub-block on AVX-512.
  static HWY_INLINE hn::Vec<DB16> PairScales(const uint8_t*, const State& s, size_t j) {
    const DB16 d;
    return hn::IfThenElse(hn::FirstN(d, 16), hn::Set(d, s.sc[j / 32]),
                          hn::Set(d, s.sc[std::min<size_t>(j / 32 + 1, 7)]));
  }
  // Values j..j+L: on AVX-512 the low then high nibbles of the 32 bytes of 64-value chunk j / 64.
  static HWY_INLINE VB Chunk(const uint8_t* b, const State&, size_t j) {
    const DB d;
    const VB raw = Load32Twice(b + offsetof(BlockQ4_K, qs) + (j / 64) * 32);
    const VB lo = hn::And(raw, hn::Set(d, 0x0F)), hi = hn::ShiftRight<4>(raw);
    if (hn::Lanes(d) == 64) return hn::IfThenElse(hn::FirstN(d, 32), lo, hi);
    return (j % 64) < 32 ? lo : hi;
  }
  static HWY_INLINE int Offset(const State&, const Acts&, size_t, size_t) { return 0; }
  static HWY_INLINE float Extra(const State& s, const Acts& a, size_t t, size_t blk) {
    return DecQ45_K<false>::Extra(s, a, t, blk);
  }
};

// q6_K: q + 32 in 0..63, sub-blocks of 16 (ggml_vec_dot_q6_K_q8_K).
struct DecQ6_KU8 {
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  static constexpr bool kOffset = true;
  using State = DecQ6_K::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return DecQ6_K::Prepare(b); }
  // Pair lane p of chunk j has sub-block j / 16 + p / 8: a byte shuffle of the 16 int8 scales of the block (in
  // every 128-bit lane), widened to int16.
  static HWY_INLINE hn::Vec<DB16> PairScales(const uint8_t* b, const State&, size_t j) {
    const hn::Rebind<int8_t, DB16> d8;
    const auto table = hn::LoadDup128(d8, reinterpret_cast<const int8_t*>(b + offsetof(BlockQ6_K, scales)));
    const auto idx = hn::Add(hn::ShiftRight<3>(hn::Iota(d8, 0)), hn::Set(d8, static_cast<int8_t>(j / 16)));
    return hn::PromoteTo(DB16(), hn::TableLookupBytes(table, idx));
  }
  // Values j..j+L of half h = j / 128 starting at quarter k = (j % 128) / 32: low (k < 2) or high nibbles of ql
  // bytes 64h + 32 (k & 1) + 0..L, top bits 2k.. of qh[32h + l] (quarter k + 1 in the upper half on AVX-512).
  static HWY_INLINE VB Chunk(const uint8_t* b, const State&, size_t j) {
    const DB d;
    const size_t h = j / 128, k = (j % 128) / 32;
    const VB ql = hn::LoadU(d, b + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (k & 1));
    const VB lo = k < 2 ? hn::And(ql, hn::Set(d, 0x0F)) : hn::ShiftRight<4>(ql);
    const uint8_t* qh = b + offsetof(BlockQ6_K, qh) + 32 * h;
    VB hi;
    if (hn::Lanes(d) == 64) {
      const hn::Half<DB> dh;
      const auto q = hn::LoadU(dh, qh);
      hi = hn::Combine(d, hn::ShiftRightSame(q, static_cast<int>(2 * k + 2)),
                       hn::ShiftRightSame(q, static_cast<int>(2 * k)));
    } else {
      hi = hn::ShiftRightSame(hn::LoadU(d, qh), static_cast<int>(2 * k));
    }
    return hn::Or(lo, hn::ShiftLeft<4>(hn::And(hi, hn::Set(d, 3))));
  }
  // 32 * sum_s sc[s] * bsums[s]: what q + 32 adds to the integer block sum.
  static HWY_INLINE int Offset(const State& s, const Acts& a, size_t t, size_t blk) {
    const uint8_t* bs = a.Block(t, blk) + offsetof(BlockQ8_K, bsums);
    int sum = 0;
    for (int j = 0; j < 16; ++j) sum += qd::LoadI16(bs + 2 * j) * s.sc[j];
    return 32 * sum;
  }
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// As DotTokens (quant_dot.cpp) on the byte path; activations read as int8 straight from the Q8_K blocks.
template <class Dec, int kT>
HWY_NOINLINE void DotTokensU8(const uint8_t* HWY_RESTRICT w, const Acts& a, size_t t0, float* out) {
  const DB db;
  const DBI8 d8;
  const DB32 d32;
  const DBF df;
  const size_t L = hn::Lanes(db);
  const auto first = hn::FirstN(d32, 1);
  auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
  float e[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * Dec::kBytes;
    const typename Dec::State st = Dec::Prepare(blk);
    const auto* q0 = reinterpret_cast<const int8_t*>(a.Block(t0, b) + a.qs_offset);
    const auto* q1 = kT > 1 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 1, b) + a.qs_offset) : q0;
    const auto* q2 = kT > 2 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 2, b) + a.qs_offset) : q0;
    const auto* q3 = kT > 3 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 3, b) + a.qs_offset) : q0;
    auto i0 = hn::Zero(d32), i1 = hn::Zero(d32), i2 = hn::Zero(d32), i3 = hn::Zero(d32);
    for (size_t j = 0; j < kQK_K; j += L) {
      const VB wv = Dec::Chunk(blk, st, j);
      const auto sc = Dec::PairScales(blk, st, j);
      i0 = MulAddU8I8(wv, hn::LoadU(d8, q0 + j), sc, i0);
      if constexpr (kT > 1) i1 = MulAddU8I8(wv, hn::LoadU(d8, q1 + j), sc, i1);
      if constexpr (kT > 2) i2 = MulAddU8I8(wv, hn::LoadU(d8, q2 + j), sc, i2);
      if constexpr (kT > 3) i3 = MulAddU8I8(wv, hn::LoadU(d8, q3 + j), sc, i3);
    }
    const float d = st.d;
    if constexpr (Dec::kOffset) i0 = hn::Sub(i0, hn::IfThenElseZero(first, hn::Set(d32, Dec::Offset(st, a, t0, b))));
    f0 = hn::MulAdd(hn::ConvertTo(df, i0), hn::Set(df, d * a.d[t0 * a.nb + b]), f0);
    e[0] += Dec::Extra(st, a, t0, b);
    if constexpr (kT > 1) {
      if constexpr (Dec::kOffset) {
        i1 = hn::Sub(i1, hn::IfThenElseZero(first, hn::Set(d32, Dec::Offset(st, a, t0 + 1, b))));
      }
      f1 = hn::MulAdd(hn::ConvertTo(df, i1), hn::Set(df, d * a.d[(t0 + 1) * a.nb + b]), f1);
      e[1] += Dec::Extra(st, a, t0 + 1, b);
    }
    if constexpr (kT > 2) {
      if constexpr (Dec::kOffset) {
        i2 = hn::Sub(i2, hn::IfThenElseZero(first, hn::Set(d32, Dec::Offset(st, a, t0 + 2, b))));
      }
      f2 = hn::MulAdd(hn::ConvertTo(df, i2), hn::Set(df, d * a.d[(t0 + 2) * a.nb + b]), f2);
      e[2] += Dec::Extra(st, a, t0 + 2, b);
    }
    if constexpr (kT > 3) {
      if constexpr (Dec::kOffset) {
        i3 = hn::Sub(i3, hn::IfThenElseZero(first, hn::Set(d32, Dec::Offset(st, a, t0 + 3, b))));
      }
      f3 = hn::MulAdd(hn::ConvertTo(df, i3), hn::Set(df, d * a.d[(t0 + 3) * a.nb + b]), f3);
      e[3] += Dec::Extra(st, a, t0 + 3, b);
    }
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, f0)) + e[0];
  if constexpr (kT > 1) out[1] = hn::GetLane(hn::SumOfLanes(df, f1)) + e[1];
  if constexpr (kT > 2) out[2] = hn::GetLane(hn::SumOfLanes(df, f2)) + e[2];
  if constexpr (kT > 3) out[3] = hn::GetLane(hn::SumOfLanes(df, f3)) + e[3];
}

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // PLM_QUANT_DOT_U8
#endif  // include guard toggle
