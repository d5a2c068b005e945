// Per-target decoders of the quantized weight blocks for quant_dot.cpp: each turns a block into int16 vectors of
// its signed integer values (k-quant sub-block scales folded in), chunk by chunk, plus the activation view the
// kernel reads. Included by quant_dot.cpp once per Highway target (foreach_target), hence the toggling guard.
#if defined(POCKETLM_OPS_QUANT_DOT_DECODERS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_QUANT_DOT_DECODERS_INL_H_
#undef POCKETLM_OPS_QUANT_DOT_DECODERS_INL_H_
#else
#define POCKETLM_OPS_QUANT_DOT_DECODERS_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "hwy/highway.h"
#include "ops/quant_dot_internal.h"
#include "ops/quant_dot_lattice.h"
#include "tensor/quant/blocks.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace qdec {
namespace hn = hwy::HWY_NAMESPACE;
namespace qd = quant_dot_internal;
using namespace quant;  // NOLINT(google-build-using-namespace): block structs

// One chunk is at most one 32-value block: L int16 lanes, 8 <= L <= 32 on every SIMD target.
using D16 = hn::CappedTag<int16_t, 32>;
using D32 = hn::Repartition<int32_t, D16>;
using DF = hn::Repartition<float, D16>;
using DI8 = hn::Rebind<int8_t, D16>;
using DU8 = hn::Rebind<uint8_t, D16>;
using V16 = hn::Vec<D16>;
using VU8 = hn::Vec<DU8>;

// Activation rows of one call: block b of token t, with its f32 scale (and Q8_1's s) converted once per call, and
// the quants of the tokens [t_base, t_base + count) widened to int16 (q16: rows of n), so that the inner loop
// multiplies straight from memory.
struct Acts {
  const uint8_t* rows;
  size_t row_bytes;
  size_t block_bytes;
  size_t qs_offset;
  size_t nb, qk;
  const float* d;  // (n_tokens, nb)
  const float* s;  // (n_tokens, nb), Q8_1 only
  const int16_t* q16;
  size_t t_base;
  const int32_t* sums;  // (n_tokens, nb): sum of the block's quants (Q8_0 activations), byte path only
  int32_t neg_o;        // minus the code offset o of the byte path (see quant_dot_u8-inl.h)
  int32_t Off(size_t t, size_t b) const { return neg_o * sums[t * nb + b]; }  // -o * sum(y)
  const uint8_t* Block(size_t t, size_t b) const { return rows + t * row_bytes + b * block_bytes; }
  const int16_t* Q16(size_t t, size_t b) const { return q16 + (t - t_base) * nb * qk + b * qk; }
};

// q16 rows for tokens [t0, t0 + count) (see Acts).
inline void WidenActs(const Acts& a, size_t t0, size_t count, int16_t* HWY_RESTRICT q16) {
  const D16 d16;
  const size_t L = hn::Lanes(d16);
  for (size_t t = 0; t < count; ++t) {
    for (size_t b = 0; b < a.nb; ++b) {
      const auto* qs = reinterpret_cast<const int8_t*>(a.Block(t0 + t, b) + a.qs_offset);
      int16_t* dst = q16 + (t * a.nb + b) * a.qk;
      for (size_t j = 0; j < a.qk; j += L) hn::StoreU(hn::PromoteTo(d16, hn::LoadU(DI8(), qs + j)), d16, dst + j);
    }
  }
}

HWY_INLINE V16 WidenU8(VU8 v) {
  return hn::PromoteTo(D16(), v);
}

// Values j..j+L of a 32-block whose byte i holds value i in its low nibble and value i + 16 in its high nibble.
HWY_INLINE VU8 Nibbles32(const uint8_t* qs, size_t j) {
  const DU8 du;
  const auto mask = hn::Set(du, 0x0F);
  if (hn::Lanes(du) >= 32) {
    const auto raw = hn::LoadDup128(du, qs);
    return hn::IfThenElse(hn::FirstN(du, 16), hn::And(raw, mask), hn::ShiftRight<4>(raw));
  }
  const auto raw = hn::LoadU(du, qs + (j & 15));
  if (j < 16) return hn::And(raw, mask);
  return hn::ShiftRight<4>(raw);
}

// Lanes of values j..j+L scaled by sub-blocks of 16: sc[j / 16], and sc[j / 16 + 1] for lanes 16..31 when L = 32.
HWY_INLINE V16 Scales16(const int16_t* sc, size_t j) {
  const D16 d;
  if (hn::Lanes(d) <= 16) return hn::Set(d, sc[j / 16]);
  return hn::IfThenElse(hn::FirstN(d, 16), hn::Set(d, sc[j / 16]), hn::Set(d, sc[j / 16 + 1]));
}

// 5th bits of values j..j+L (bit i of the little-endian qh is value i) as 0 or 16.
HWY_INLINE V16 HighBits32(const uint8_t* qh, size_t j) {
  const D16 d;
  return hn::IfThenElseZero(hn::LoadMaskBits(d, qh + j / 8), hn::Set(d, 16));
}

// ---- Decoders: State Prepare(block); V16 Chunk(block, state, j); scalar Extra term per block -----------------
// Each mirrors the value formula of ggml's ggml_vec_dot_<type>_q8_<x>_generic.

struct DecQ8_0 {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockQ8_0);
  struct State {
    float d;
  };
  static HWY_INLINE State Prepare(const uint8_t* b) { return {qd::LoadF16(b)}; }
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State&, size_t j) {
    return hn::PromoteTo(D16(), hn::LoadU(DI8(), reinterpret_cast<const int8_t*>(b + offsetof(BlockQ8_0, qs)) + j));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// q - 8
struct DecQ4_0 {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockQ4_0);
  using State = DecQ8_0::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return {qd::LoadF16(b)}; }
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State&, size_t j) {
    return hn::Sub(WidenU8(Nibbles32(b + offsetof(BlockQ4_0, qs), j)), hn::Set(D16(), 8));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// q (+ m * s of the Q8_1 block)
struct DecQ4_1 {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockQ4_1);
  struct State {
    float d, m;
  };
  static HWY_INLINE State Prepare(const uint8_t* b) { return {qd::LoadF16(b), qd::LoadF16(b + 2)}; }
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State&, size_t j) {
    return WidenU8(Nibbles32(b + offsetof(BlockQ4_1, qs), j));
  }
  static constexpr bool kExtra = true;
  static HWY_INLINE float Extra(const State& s, const Acts& a, size_t t, size_t blk) {
    return s.m * a.s[t * a.nb + blk];
  }
};

// (q | hbit << 4) - 16
struct DecQ5_0 {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockQ5_0);
  using State = DecQ8_0::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return {qd::LoadF16(b)}; }
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State&, size_t j) {
    const V16 q =
        hn::Or(WidenU8(Nibbles32(b + offsetof(BlockQ5_0, qs), j)), HighBits32(b + offsetof(BlockQ5_0, qh), j));
    return hn::Sub(q, hn::Set(D16(), 16));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// q | hbit << 4 (+ m * s)
struct DecQ5_1 {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockQ5_1);
  using State = DecQ4_1::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return {qd::LoadF16(b), qd::LoadF16(b + 2)}; }
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State&, size_t j) {
    return hn::Or(WidenU8(Nibbles32(b + offsetof(BlockQ5_1, qs), j)), HighBits32(b + offsetof(BlockQ5_1, qh), j));
  }
  static constexpr bool kExtra = true;
  static HWY_INLINE float Extra(const State& s, const Acts& a, size_t t, size_t blk) {
    return s.m * a.s[t * a.nb + blk];
  }
};

// kvalues_iq4nl[q] for the 16 nibble-packed bytes at qs, into v[0..32): one 16-byte table lookup per half.
HWY_INLINE void DecodeIQ4(const uint8_t* qs, int8_t* v) {
  const hn::CappedTag<uint8_t, 16> du;  // exactly 16 lanes on every SIMD target
  const hn::RebindToSigned<decltype(du)> di;
  const auto table = hn::LoadU(di, kIQ4NLValues);
  const auto raw = hn::LoadU(du, qs);
  hn::StoreU(hn::TableLookupBytes(table, hn::BitCast(di, hn::And(raw, hn::Set(du, 0x0F)))), di, v);
  hn::StoreU(hn::TableLookupBytes(table, hn::BitCast(di, hn::ShiftRight<4>(raw))), di, v + 16);
}

struct DecIQ4_NL {
  static constexpr size_t kQK = 32, kBytes = sizeof(BlockIQ4_NL);
  struct State {
    float d;
    int8_t v[32];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b);
    DecodeIQ4(b + offsetof(BlockIQ4_NL, qs), s.v);
    return s;
  }
  static HWY_INLINE V16 Chunk(const uint8_t*, const State& s, size_t j) {
    return hn::PromoteTo(D16(), hn::LoadU(DI8(), s.v + j));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// Σ_j bsums[j] * mins[j / per], the min term of the k-quants (ggml: summs / sumi over y[i].bsums). Scalar: a
// vector version (madd + reduction) measured slower for one token.
HWY_INLINE int BsumsDot(const Acts& a, size_t t, size_t blk, const uint8_t* mins, int per) {
  const uint8_t* bs = a.Block(t, blk) + offsetof(BlockQ8_K, bsums);
  int sum = 0;
  for (int j = 0; j < 16; ++j) sum += qd::LoadI16(bs + 2 * j) * mins[j / per];
  return sum;
}

// q2 * (sc & 15), minus dmin * (sc >> 4) * bsums (ggml_vec_dot_q2_K_q8_K_generic)
struct DecQ2_K {
  static constexpr size_t kQK = kQK_K, kBytes = sizeof(BlockQ2_K);
  struct State {
    float d, dmin;
    int16_t sc[16];
    uint8_t m[16];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b + offsetof(BlockQ2_K, d));
    s.dmin = qd::LoadF16(b + offsetof(BlockQ2_K, dmin));
    for (int j = 0; j < 16; ++j) {
      s.sc[j] = static_cast<int16_t>(b[j] & 0xF);
      s.m[j] = static_cast<uint8_t>(b[j] >> 4);
    }
    return s;
  }
  // Value j: half j / 128, byte j % 32 of that half's 32 bytes, bits 2 * ((j % 128) / 32).
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State& s, size_t j) {
    const DU8 du;
    const auto raw = hn::LoadU(du, b + offsetof(BlockQ2_K, qs) + (j / 128) * 32 + (j % 32));
    const auto q = hn::And(hn::ShiftRightSame(raw, static_cast<int>(2 * ((j % 128) / 32))), hn::Set(du, 3));
    return hn::Mul(WidenU8(q), Scales16(s.sc, j));
  }
  static constexpr bool kExtra = true;
  static HWY_INLINE float Extra(const State& s, const Acts& a, size_t t, size_t blk) {
    const float dmin = a.d[t * a.nb + blk] * s.dmin;
    return -(dmin * static_cast<float>(BsumsDot(a, t, blk, s.m, 1)));
  }
};

// ((q2 | hbit << 2) - 4) * (sc - 32) (ggml_vec_dot_q3_K_q8_K_generic)
struct DecQ3_K {
  static constexpr size_t kQK = kQK_K, kBytes = sizeof(BlockQ3_K);
  struct State {
    float d;
    int16_t sc[16];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b + offsetof(BlockQ3_K, d));
    int8_t sc8[16];
    qd::UnpackQ3Scales(b + offsetof(BlockQ3_K, scales), sc8);
    for (int j = 0; j < 16; ++j) s.sc[j] = static_cast<int16_t>(sc8[j] - 32);
    return s;
  }
  // Low bits as Q2_K; the high bit of value j is bit (j / 32) of hmask[j % 32].
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State& s, size_t j) {
    const DU8 du;
    const auto one = hn::Set(du, 1);
    const auto raw = hn::LoadU(du, b + offsetof(BlockQ3_K, qs) + (j / 128) * 32 + (j % 32));
    const auto q2 = hn::And(hn::ShiftRightSame(raw, static_cast<int>(2 * ((j % 128) / 32))), hn::Set(du, 3));
    const auto hm = hn::LoadU(du, b + offsetof(BlockQ3_K, hmask) + (j % 32));
    const auto h = hn::And(hn::ShiftRightSame(hm, static_cast<int>(j / 32)), one);
    const V16 q3 = hn::Sub(WidenU8(hn::Or(q2, hn::ShiftLeft<2>(h))), hn::Set(D16(), 4));
    return hn::Mul(q3, Scales16(s.sc, j));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// (q4 [+ 16 * hbit]) * sc, minus dmin * m * bsums (ggml_vec_dot_q4_K_q8_K_generic / q5_K)
template <bool kQ5>
struct DecQ45_K {
  using B = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;
  static constexpr size_t kQK = kQK_K, kBytes = sizeof(B);
  struct State {
    float d, dmin;
    int16_t sc[8];
    uint8_t m[8];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b + offsetof(B, d));
    s.dmin = qd::LoadF16(b + offsetof(B, dmin));
    uint8_t sc[8];
    qd::UnpackK4Scales(b + offsetof(B, scales), sc, s.m);
    for (int j = 0; j < 8; ++j) s.sc[j] = sc[j];
    return s;
  }
  // Value j: 64-value chunk c = j / 64 in bytes 32c..32c+31, low nibbles first; 5th bit 2c (+1) of qh[j % 32].
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State& s, size_t j) {
    const DU8 du;
    const auto raw = hn::LoadU(du, b + offsetof(B, qs) + (j / 64) * 32 + (j % 32));
    auto q = (j % 64) < 32 ? hn::And(raw, hn::Set(du, 0x0F)) : hn::ShiftRight<4>(raw);
    if constexpr (kQ5) {
      const auto qh = hn::LoadU(du, b + offsetof(B, qh) + (j % 32));
      const auto h = hn::And(hn::ShiftRightSame(qh, static_cast<int>(j / 32)), hn::Set(du, 1));
      q = hn::Or(q, hn::ShiftLeft<4>(h));
    }
    return hn::Mul(WidenU8(q), hn::Set(D16(), s.sc[j / 32]));
  }
  static constexpr bool kExtra = true;
  static HWY_INLINE float Extra(const State& s, const Acts& a, size_t t, size_t blk) {
    const float dmin = s.dmin * a.d[t * a.nb + blk];
    return -(dmin * static_cast<float>(BsumsDot(a, t, blk, s.m, 2)));
  }
};

// ((ql | qh << 4) - 32) * sc (ggml_vec_dot_q6_K_q8_K_generic)
struct DecQ6_K {
  static constexpr size_t kQK = kQK_K, kBytes = sizeof(BlockQ6_K);
  struct State {
    float d;
    int16_t sc[16];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b + offsetof(BlockQ6_K, d));
    for (int j = 0; j < 16; ++j) s.sc[j] = static_cast<int8_t>(b[offsetof(BlockQ6_K, scales) + j]);
    return s;
  }
  // Value j: half h = j / 128, quarter k = (j % 128) / 32, l = j % 32: low nibble (k < 2) or high nibble of
  // ql[64h + l + 32 (k & 1)], top bits 2k..2k+1 of qh[32h + l].
  static HWY_INLINE V16 Chunk(const uint8_t* b, const State& s, size_t j) {
    const DU8 du;
    const size_t h = j / 128, k = (j % 128) / 32, l = j % 32;
    const auto ql = hn::LoadU(du, b + offsetof(BlockQ6_K, ql) + 64 * h + l + 32 * (k & 1));
    const auto lo = k < 2 ? hn::And(ql, hn::Set(du, 0x0F)) : hn::ShiftRight<4>(ql);
    const auto qh = hn::LoadU(du, b + offsetof(BlockQ6_K, qh) + 32 * h + l);
    const auto hi = hn::And(hn::ShiftRightSame(qh, static_cast<int>(2 * k)), hn::Set(du, 3));
    const V16 q = hn::Sub(WidenU8(hn::Or(lo, hn::ShiftLeft<4>(hi))), hn::Set(D16(), 32));
    return hn::Mul(q, Scales16(s.sc, j));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// kvalues_iq4nl[q] * (ls - 32) (ggml_vec_dot_iq4_xs_q8_K_generic)
struct DecIQ4_XS {
  static constexpr size_t kQK = kQK_K, kBytes = sizeof(BlockIQ4_XS);
  struct State {
    float d;
    int16_t sc[8];
    int8_t v[kQK_K];
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    s.d = qd::LoadF16(b);
    int ls[8];
    qd::UnpackIQ4XSScales(b + offsetof(BlockIQ4_XS, scales_h), b + offsetof(BlockIQ4_XS, scales_l), ls);
    for (int ib = 0; ib < 8; ++ib) {
      s.sc[ib] = static_cast<int16_t>(ls[ib]);
      DecodeIQ4(b + offsetof(BlockIQ4_XS, qs) + 16 * ib, s.v + 32 * ib);
    }
    return s;
  }
  static HWY_INLINE V16 Chunk(const uint8_t*, const State& s, size_t j) {
    return hn::Mul(hn::PromoteTo(D16(), hn::LoadU(DI8(), s.v + j)), hn::Set(D16(), s.sc[j / 32]));
  }
  static constexpr bool kExtra = false;  // no min term
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

// Lattice i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m): blocks unpacked by quant_dot_lattice.h
// (grid lookups, sign bits, scales per 16; d carries ggml's constant factor, iq1's delta is in the values). Where the
// unpacked block comes from is the source Src: LatticeUnpack<U> unpacks each block as it is read (decode),
// LatticeStored reads blocks unpacked before into a tile of rows (prefill, quant_dot.cpp's MatMulLattice).
template <class U>
struct LatticeUnpack {
  static constexpr size_t kBytes = U::kBytes;
  using State = qd::LatticeBlock;
  static HWY_INLINE State Prepare(const uint8_t* b) {
    State s;
    qd::Unpack<U>(b, &s);
    return s;
  }
  static HWY_INLINE const qd::LatticeBlock& Block(const State& s) { return s; }
};

struct LatticeStored {
  static constexpr size_t kBytes = sizeof(qd::LatticeBlock);
  struct State {
    float d;  // read by the kernels
    const qd::LatticeBlock* p;
  };
  static HWY_INLINE State Prepare(const uint8_t* b) {
    const auto* p = reinterpret_cast<const qd::LatticeBlock*>(b);
    return {p->d, p};
  }
  static HWY_INLINE const qd::LatticeBlock& Block(const State& s) { return *s.p; }
};

// The int16 path: values j..j+L with signs and scales applied (|62 * 31| fits int16).
template <class Src>
struct DecLattice {
  static constexpr size_t kQK = kQK_K, kBytes = Src::kBytes;
  using State = typename Src::State;
  static HWY_INLINE State Prepare(const uint8_t* b) { return Src::Prepare(b); }
  static HWY_INLINE V16 Chunk(const uint8_t*, const State& st, size_t j) {
    const D16 d;
    const qd::LatticeBlock& blk = Src::Block(st);
    const V16 mag = WidenU8(hn::LoadU(DU8(), blk.mag + j));
    const V16 v = hn::IfThenElse(hn::LoadMaskBits(d, blk.neg + j / 8), hn::Neg(mag), mag);
    V16 sc = hn::Set(d, blk.sc[j / 16]);
    if (hn::Lanes(d) > 16) sc = hn::IfThenElse(hn::FirstN(d, 16), sc, hn::Set(d, blk.sc[j / 16 + 1]));
    return hn::Mul(v, sc);
  }
  static constexpr bool kExtra = false;  // iq1's delta is in the values
  static HWY_INLINE float Extra(const State&, const Acts&, size_t, size_t) { return 0.0f; }
};

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
