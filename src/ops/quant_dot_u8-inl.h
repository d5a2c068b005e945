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
#include <cstring>
#include <vector>

#include "hwy/highway.h"
#include "ops/quant_dot_internal.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"

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
  static constexpr bool kOffset = false, kSignedActs = false;
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

// Scales of the value pairs of chunk j for 16 int8 scales per 16 values: pair lane p has scale sc16[j / 16 + p / 8],
// a byte shuffle of the 16 scales (in every 128-bit lane), widened to int16.
HWY_INLINE hn::Vec<DB16> PairScales16(const int8_t* sc16, size_t j) {
  const hn::Rebind<int8_t, DB16> d8;
  const auto table = hn::LoadDup128(d8, sc16);
  const auto idx = hn::Add(hn::ShiftRight<3>(hn::Iota(d8, 0)), hn::Set(d8, static_cast<int8_t>(j / 16)));
  return hn::PromoteTo(DB16(), hn::TableLookupBytes(table, idx));
}

// q6_K: q + 32 in 0..63, sub-blocks of 16 (ggml_vec_dot_q6_K_q8_K).
struct DecQ6_KU8 {
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  static constexpr bool kOffset = true, kSignedActs = false;
  using State = DecQ6_K::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return DecQ6_K::Prepare(b); }
  static HWY_INLINE hn::Vec<DB16> PairScales(const uint8_t* b, const State&, size_t j) {
    return PairScales16(reinterpret_cast<const int8_t*>(b + offsetof(BlockQ6_K, scales)), j);
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

// Lattice i-quants (quant_dot_lattice.h, sources in quant_dot_decoders-inl.h): the unsigned magnitudes as weights,
// the signs moved onto the activations (kSignedActs: y negated where the weight is), as ggml's AVX2
// ggml_vec_dot_iq2_xs_q8_K does with _mm256_sign_epi8. Magnitudes <= 62: vpmaddubsw pairs stay below 2^15.
template <class Src>
struct DecLatticeU8 {
  static constexpr size_t kBytes = Src::kBytes;
  static constexpr bool kOffset = false, kSignedActs = true;
  using State = typename Src::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return Src::Prepare(b); }
  static HWY_INLINE hn::Vec<DB16> PairScales(const uint8_t*, const State& st, size_t j) {
    return PairScales16(Src::Block(st).sc, j);
  }
  static HWY_INLINE VB Chunk(const uint8_t*, const State& st, size_t j) {
    return hn::LoadU(DB(), Src::Block(st).mag + j);
  }
  static HWY_INLINE hn::Vec<DBI8> SignActs(const State& st, size_t j, hn::Vec<DBI8> y) {
    return hn::IfThenElse(hn::LoadMaskBits(DBI8(), Src::Block(st).neg + j / 8), hn::Neg(y), y);
  }
  static HWY_INLINE int Offset(const State&, const Acts&, size_t, size_t) { return 0; }
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// Activations of chunk j as the decoder multiplies them.
template <class Dec>
HWY_INLINE hn::Vec<DBI8> ActsOf(const typename Dec::State& st, size_t j, hn::Vec<DBI8> y) {
  if constexpr (Dec::kSignedActs) return Dec::SignActs(st, j, y);
  return y;
}

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
    if constexpr (kT == 1) {
      // Decode: fetch the row two rows ahead (rows are contiguous) while this one computes (see TileB32).
      const uint8_t* ahead = blk + 2 * a.nb * Dec::kBytes;
      for (size_t off = 0; off < Dec::kBytes; off += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + off), _MM_HINT_T1);
      }
    }
    const typename Dec::State st = Dec::Prepare(blk);
    const auto* q0 = reinterpret_cast<const int8_t*>(a.Block(t0, b) + a.qs_offset);
    const auto* q1 = kT > 1 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 1, b) + a.qs_offset) : q0;
    const auto* q2 = kT > 2 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 2, b) + a.qs_offset) : q0;
    const auto* q3 = kT > 3 ? reinterpret_cast<const int8_t*>(a.Block(t0 + 3, b) + a.qs_offset) : q0;
    auto i0 = hn::Zero(d32), i1 = hn::Zero(d32), i2 = hn::Zero(d32), i3 = hn::Zero(d32);
    for (size_t j = 0; j < kQK_K; j += L) {
      const VB wv = Dec::Chunk(blk, st, j);
      const auto sc = Dec::PairScales(blk, st, j);
      i0 = MulAddU8I8(wv, ActsOf<Dec>(st, j, hn::LoadU(d8, q0 + j)), sc, i0);
      if constexpr (kT > 1) i1 = MulAddU8I8(wv, ActsOf<Dec>(st, j, hn::LoadU(d8, q1 + j)), sc, i1);
      if constexpr (kT > 2) i2 = MulAddU8I8(wv, ActsOf<Dec>(st, j, hn::LoadU(d8, q2 + j)), sc, i2);
      if constexpr (kT > 3) i3 = MulAddU8I8(wv, ActsOf<Dec>(st, j, hn::LoadU(d8, q3 + j)), sc, i3);
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

// ---- 32-value blocks against Q8_0 / Q8_1 activations: q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl -------------------
// One block is one 256-bit vector on every x86 target (the AVX-512 targets use the EVEX 256-bit forms and their 32
// registers for larger tiles). A tile of kR weight rows x kT tokens is computed per pass over the blocks, so each
// decoded weight block is reused for kT tokens and each activation block for kR rows; per (row, token, block):
// one 8-lane integer dot (exact, int32), converted to f32 and multiplied by d_w * d_a into an 8-lane accumulator,
// as ggml's AVX2 ggml_vec_dot_q4_0_q8_0 does per block.
//
// Unsigned weights (q4_0: q - 8, q5_0: q - 16) are multiplied as their unsigned codes u (0..15, 0..31) and the
// offset is subtracted once per (token, block) in the integer domain: sum (u - o) y = sum u y - o sum y; Acts::Off
// gives -o sum y per (token, block) and seeds lane 0 of the block's integer accumulator, so the block sum stays
// the exact integer ggml computes. Signed weights (q8_0, iq4_nl) use ggml's sign trick for vpmaddubsw
// (|w| times sign(w) y, mul_sum_i8_pairs in ggml-cpu/arch/x86/quants.c) or, with AVX512-VNNI, w + 128 (XOR 0x80)
// as unsigned with offset 128 (vpdpbusd accumulates in int32, no int16 saturation).

using V256 = __m256i;

#if HWY_TARGET == HWY_AVX3_DL
constexpr bool kVnni = true;
// acc + u . s per 4 lanes, vpdpbusd. Highway 1.0.3 compiles AVX3_DL with "avxvnni" (the VEX form, absent on Ice
// Lake / Zen 4) while its run-time check asks for AVX512-VNNI, so the intrinsic would emit the VEX encoding; the
// EVEX form is written out instead.
HWY_INLINE V256 DotU8Raw(V256 acc, V256 u, V256 s) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
#else
constexpr bool kVnni = false;
// acc + u . s per 4 lanes: vpmaddubsw (exact while |u0 s0 + u1 s1| < 2^15) then vpmaddwd by 1.
HWY_INLINE V256 DotU8Raw(V256 acc, V256 u, V256 s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#endif

// The 32 nibbles of 16 bytes: low nibbles (values 0..15) in the low 128 bits, high nibbles (16..31) in the high
// 128 bits. A 64-bit variable shift moves bits across bytes, but the mask keeps exactly each byte's high nibble.
HWY_INLINE V256 Nibbles32U8(const uint8_t* qs) {
  const V256 raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(raw, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}

// Byte i = 0xFF where bit i of `bits` is set, else 0.
HWY_INLINE V256 ByteMask32(uint32_t bits) {
#if HWY_TARGET == HWY_AVX2
  // ggml's bytes_from_bits_32: replicate byte k of bits into bytes 8k..8k+7, then test one bit per byte.
  const V256 shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const V256 bytes = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf),
                                     _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
#else
  return _mm256_movm_epi8(static_cast<__mmask32>(bits));
#endif
}

// Byte i = 16 where bit i of the little-endian 32-bit qh is set, else 0.
HWY_INLINE V256 HighBits32U8(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return _mm256_and_si256(ByteMask32(bits), _mm256_set1_epi8(16));
}

HWY_INLINE float F16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // F16C: exact for every encoding
}

// Decoders: Weights(block) = 32 codes (unsigned when !kSigned), D / M the f16 scale / min.
struct B32Q4_0 {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr bool kSigned = false, kMin = false;
  static constexpr int kOffset = 8;
  static HWY_INLINE V256 Weights(const uint8_t* b) { return Nibbles32U8(b + offsetof(BlockQ4_0, qs)); }
  static HWY_INLINE float M(const uint8_t*) { return 0.0f; }
};
struct B32Q4_1 {
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr bool kSigned = false, kMin = true;
  static constexpr int kOffset = 0;
  static HWY_INLINE V256 Weights(const uint8_t* b) { return Nibbles32U8(b + offsetof(BlockQ4_1, qs)); }
  static HWY_INLINE float M(const uint8_t* b) { return F16At(b + offsetof(BlockQ4_1, m)); }
};
struct B32Q5_0 {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr bool kSigned = false, kMin = false;
  static constexpr int kOffset = 16;
  static HWY_INLINE V256 Weights(const uint8_t* b) {
    return _mm256_or_si256(Nibbles32U8(b + offsetof(BlockQ5_0, qs)), HighBits32U8(b + offsetof(BlockQ5_0, qh)));
  }
  static HWY_INLINE float M(const uint8_t*) { return 0.0f; }
};
struct B32Q5_1 {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static constexpr bool kSigned = false, kMin = true;
  static constexpr int kOffset = 0;
  static HWY_INLINE V256 Weights(const uint8_t* b) {
    return _mm256_or_si256(Nibbles32U8(b + offsetof(BlockQ5_1, qs)), HighBits32U8(b + offsetof(BlockQ5_1, qh)));
  }
  static HWY_INLINE float M(const uint8_t* b) { return F16At(b + offsetof(BlockQ5_1, m)); }
};
struct B32Q8_0 {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr bool kSigned = true, kMin = false;
  static constexpr int kOffset = 0;
  static HWY_INLINE V256 Weights(const uint8_t* b) {
    return _mm256_loadu_si256(reinterpret_cast<const V256*>(b + offsetof(BlockQ8_0, qs)));
  }
  static HWY_INLINE float M(const uint8_t*) { return 0.0f; }
};
struct B32IQ4_NL {
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static constexpr bool kSigned = true, kMin = false;
  static constexpr int kOffset = 0;
  // kvalues_iq4nl[q]: one byte shuffle of the 16-entry table (in both 128-bit lanes).
  static HWY_INLINE V256 Weights(const uint8_t* b) {
    const V256 table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    return _mm256_shuffle_epi8(table, Nibbles32U8(b + offsetof(BlockIQ4_NL, qs)));
  }
  static HWY_INLINE float M(const uint8_t*) { return 0.0f; }
};

// The offset o of the codes the kernel multiplies (see above): codes - o are the signed values.
template <class Dec>
constexpr int B32Offset() {
  return Dec::kSigned ? (kVnni ? 128 : 0) : Dec::kOffset;
}

// Codes as multiplied: signed weights become unsigned (w + 128) with VNNI.
template <class Dec>
HWY_INLINE V256 B32Codes(const uint8_t* blk) {
  const V256 w = Dec::Weights(blk);
  if constexpr (Dec::kSigned && kVnni) return _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));
  return w;
}

// acc + codes . y per 4 lanes; signed codes without VNNI via |w| . sign(y, w).
template <class Dec>
HWY_INLINE V256 B32Dot(V256 acc, V256 w, V256 y) {
  if constexpr (Dec::kSigned && !kVnni) return DotU8Raw(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(y, w));
  return DotU8Raw(acc, w, y);
}

HWY_INLINE float HSum256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// d of the 8 blocks starting at `first` (`bytes` apart, f16 d first in each block) as f32: one gather and one
// conversion instead of 8 scalar f16 loads and conversions (which cost as much as the block's dot product).
HWY_INLINE __m256 GatherF16x8(const uint8_t* first, __m256i idx) {
  const __m256i g = _mm256_i32gather_epi32(reinterpret_cast<const int*>(first), idx, 1);
#if HWY_TARGET == HWY_AVX2
  const __m256i lo = _mm256_and_si256(g, _mm256_set1_epi32(0xFFFF));
  return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(lo, lo), 0x08)));
#else
  return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(g));  // vpmovdw keeps the low 16 bits: d
#endif
}

// sc[b * stride + t] = d_w(row, b) * d_a(t0 + t, b) for t < kT, b < nb: the per-block scales of one weight row,
// interleaved with those of the other rows of a tile (block-major) so that the kernel addresses all of them from
// one pointer (16 separate row pointers ran out of general registers in the 4 x 4 tile).
template <class Dec, int kT>
HWY_INLINE void B32RowScales(const uint8_t* row, const Acts& a, size_t t0, size_t stride, float* HWY_RESTRICT sc) {
  const size_t nb = a.nb;
  const __m256i idx =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(Dec::kBytes)));
  size_t b = 0;
  alignas(32) float tmp[8];
  for (; b + 8 <= nb; b += 8) {
    const __m256 dw = GatherF16x8(row + b * Dec::kBytes, idx);
    for (int t = 0; t < kT; ++t) {
      _mm256_store_ps(tmp, _mm256_mul_ps(dw, _mm256_loadu_ps(a.d + (t0 + t) * nb + b)));
      for (size_t i = 0; i < 8; ++i) sc[(b + i) * stride + t] = tmp[i];
    }
  }
  for (; b < nb; ++b) {
    const float dw = F16At(row + b * Dec::kBytes);
    for (int t = 0; t < kT; ++t) sc[b * stride + t] = dw * a.d[(t0 + t) * nb + b];
  }
}

// out[r * kT + t] = dot(weight row r, activation row t0 + t) for r < kR, t < kT; row r at w + r * w_row_bytes.
// scratch: kR * kT * a.nb floats.
template <class Dec, int kR, int kT>
HWY_NOINLINE void TileB32(const uint8_t* HWY_RESTRICT w, size_t w_row_bytes, const Acts& a, size_t t0,
                          float* HWY_RESTRICT scratch, float* out) {
  constexpr bool kOff = B32Offset<Dec>() != 0;
  const size_t nb = a.nb;
  constexpr size_t kRT = kR * kT;
  for (int r = 0; r < kR; ++r) B32RowScales<Dec, kT>(w + r * w_row_bytes, a, t0, kRT, scratch + r * kT);
  __m256 acc[kR][kT];
  float e[kR][kT];
  for (int r = 0; r < kR; ++r) {
    for (int t = 0; t < kT; ++t) acc[r][t] = _mm256_setzero_ps(), e[r][t] = 0.0f;
  }
  const uint8_t* y0 = a.rows + t0 * a.row_bytes + a.qs_offset;
  for (size_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) {
      // Decode is bound by how many weight bytes are in flight: while this tile computes from cache, fetch the
      // next tile's rows (the next kR rows, contiguous after these), kR blocks' worth per block step.
      const uint8_t* next = w + 2 * kR * w_row_bytes + b * (kR * Dec::kBytes);
      for (size_t off = 0; off < kR * Dec::kBytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
    }
    V256 wv[kR];
    for (int r = 0; r < kR; ++r) wv[r] = B32Codes<Dec>(w + r * w_row_bytes + b * Dec::kBytes);
    for (int t = 0; t < kT; ++t) {
      const V256 y = _mm256_loadu_si256(reinterpret_cast<const V256*>(y0 + t * a.row_bytes + b * a.block_bytes));
      V256 init = _mm256_setzero_si256();
      if constexpr (kOff) init = _mm256_zextsi128_si256(_mm_cvtsi32_si128(a.Off(t0 + t, b)));
      for (int r = 0; r < kR; ++r) {
        const V256 isum = B32Dot<Dec>(init, wv[r], y);
        // The scale broadcast folds into the FMA's memory operand (EVEX {1to8}) or a load-only vbroadcastss.
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(scratch[b * kRT + r * kT + t]), acc[r][t]);
      }
    }
    if constexpr (Dec::kMin) {
      for (int r = 0; r < kR; ++r) {
        const float m = Dec::M(w + r * w_row_bytes + b * Dec::kBytes);
        for (int t = 0; t < kT; ++t) e[r][t] += m * a.s[(t0 + t) * nb + b];
      }
    }
  }
  for (int r = 0; r < kR; ++r) {
    for (int t = 0; t < kT; ++t) out[r * kT + t] = HSum256(acc[r][t]) + e[r][t];
  }
}

// Lattice i-quants for decode: the block's groups (quant_dot_lattice.h) assembled into vectors in registers, chunk by
// chunk. Unpacking into a LatticeBlock and reading it back measured 3x slower: the wide loads of bytes just stored
// in 8-byte pieces cannot be forwarded from the store buffer and wait for the stores to retire.
template <class U>
struct DecLatticeRegs {
  static constexpr size_t kBytes = U::kBytes;
  static constexpr bool kOffset = false, kSignedActs = true;
  struct State {
    float d;
    qd::LatticeScales sc;
    uint64_t neg[4];  // sign bits of values 64k..64k+63
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s{U::D(b), U::Scales(b), {}};
    for (int k = 0; k < 4; ++k) {
      uint64_t w = 0;  // in a register: or-ing into s.neg[k] chained every group through a store and a load
      for (int i = 0; i < 8; ++i) w |= static_cast<uint64_t>(U::Group(b, 8 * k + i).neg & 0xFF) << (8 * i);
      s.neg[k] = w;
    }
    return s;
  }
  static HWY_INLINE hn::Vec<DB16> PairScales(const uint8_t*, const State& st, size_t j) {
    // One 16-byte store and load of the same bytes: forwarded from the store buffer.
    alignas(16) int8_t sc[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(sc),
                    _mm_set_epi64x(static_cast<int64_t>(st.sc.hi), static_cast<int64_t>(st.sc.lo)));
    return PairScales16(sc, j);
  }
  // Magnitudes of values j..j+L: groups j / 8 .. (j + L) / 8 - 1.
  static HWY_INLINE VB Chunk(const uint8_t* b, const State&, size_t j) {
    const int g = static_cast<int>(j / 8);
    const auto m = [&](int k) { return static_cast<int64_t>(U::Group(b, g + k).mag); };
#if HWY_TARGET == HWY_AVX2
    return VB{_mm256_set_epi64x(m(3), m(2), m(1), m(0))};
#else
    return VB{_mm512_set_epi64(m(7), m(6), m(5), m(4), m(3), m(2), m(1), m(0))};
#endif
  }
  // y negated where the weight is.
  static HWY_INLINE hn::Vec<DBI8> SignActs(const State& st, size_t j, hn::Vec<DBI8> y) {
    const uint64_t bits = st.neg[j / 64] >> (j % 64);
#if HWY_TARGET == HWY_AVX2
    const V256 sign = _mm256_or_si256(ByteMask32(static_cast<uint32_t>(bits)), _mm256_set1_epi8(1));
    return hn::Vec<DBI8>{_mm256_sign_epi8(y.raw, sign)};
#else
    return hn::Vec<DBI8>{_mm512_mask_sub_epi8(y.raw, _cvtu64_mask64(bits), _mm512_setzero_si512(), y.raw)};
#endif
  }
  static HWY_INLINE int Offset(const State&, const Acts&, size_t, size_t) {
    return 0;
  }
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) {
    return 0.0f;
  }
};

// The decode decoder of lattice type U: DecLatticeRegs, or on AVX-512 for iq2_xs and iq3_s (the most used lattice
// types) a vector index computation and a hardware gather per chunk instead of 8 scalar lookups and inserts.
template <class U>
struct LatticeDecode {
  using type = DecLatticeRegs<U>;
};

#if HWY_TARGET != HWY_AVX2
// iq2_xs: the 8 u16 codes of a chunk widened to 64-bit lanes, masked to their 9-bit index, gathered from kIQ2XSGrid.
// Signs: ksigns_iq2xs's 8th bit is the parity of the 7 stored ones (iq_grids.h), computed for 8 codes at a time.
struct DecIQ2_XSGather : DecLatticeRegs<qd::UnpackIQ2_XS> {
  static HWY_INLINE const uint8_t* Qs(const uint8_t* b) { return b + offsetof(BlockIQ2_XS, qs); }
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s{qd::UnpackIQ2_XS::D(b), qd::UnpackIQ2_XS::Scales(b), {}};
    for (int k = 0; k < 4; ++k) {
      const __m128i sg = _mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(Qs(b) + 16 * k)), 9);
      __m128i p = _mm_xor_si128(sg, _mm_srli_epi16(sg, 4));
      p = _mm_xor_si128(p, _mm_srli_epi16(p, 2));
      p = _mm_xor_si128(p, _mm_srli_epi16(p, 1));
      const __m128i bits = _mm_or_si128(sg, _mm_slli_epi16(_mm_and_si128(p, _mm_set1_epi16(1)), 7));
      s.neg[k] = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(bits, bits)));
    }
    return s;
  }
  static HWY_INLINE VB Chunk(const uint8_t* b, const State&, size_t j) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(Qs(b) + j / 4));  // groups j / 8 ..+8
    const __m512i idx = _mm512_and_si512(_mm512_cvtepu16_epi64(q), _mm512_set1_epi64(511));
    return VB{_mm512_i64gather_epi64(idx, reinterpret_cast<const long long*>(kIQ2XSGrid), 8)};
  }
};
template <>
struct LatticeDecode<qd::UnpackIQ2_XS> {
  using type = DecIQ2_XSGather;
};

// iq3_s: the 16 halves of a chunk (two sub-blocks) as 32-bit lanes: index bytes | bit 8 from the two qh bytes (bit k
// of qh[ib] for half k of sub-block ib: one 16-bit lane mask), gathered from kIQ3SGrid. Sign bits are stored plain.
struct DecIQ3_SGather : DecLatticeRegs<qd::UnpackIQ3_S> {
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s{qd::UnpackIQ3_S::D(b), qd::UnpackIQ3_S::Scales(b), {}};
    std::memcpy(s.neg, b + offsetof(BlockIQ3_S, signs), 32);
    return s;
  }
  static HWY_INLINE VB Chunk(const uint8_t* b, const State&, size_t j) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + offsetof(BlockIQ3_S, qs) + j / 4));
    uint16_t high;
    std::memcpy(&high, b + offsetof(BlockIQ3_S, qh) + j / 32, 2);
    const __m512i idx8 = _mm512_cvtepu8_epi32(lo);
    const __m512i idx = _mm512_mask_or_epi32(idx8, _cvtu32_mask16(high), idx8, _mm512_set1_epi32(256));
    return VB{_mm512_i32gather_epi32(idx, reinterpret_cast<const int*>(kIQ3SGrid), 4)};
  }
};
template <>
struct LatticeDecode<qd::UnpackIQ3_S> {
  using type = DecIQ3_SGather;
};
#endif

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // PLM_QUANT_DOT_U8
#endif  // include guard toggle
