// Quantized weight rows times 8-bit activations (see quant_dot.h), written once with Highway for every target.
//
// Scheme: the activation quants are widened to int16 once per call (per ~256 KiB of tokens). Then per weight
// block and group of up to 4 tokens, the block is decoded chunk by chunk (L = 8..32 values, one int16 vector; see
// quant_dot_decoders-inl.h) into its signed integer values, with the sub-block scale of the k-quants folded in
// (every product fits int16: |q * sc| <= 127 * 32 for iq4_xs, 32 * 128 for q6_K); each chunk is multiplied with
// the activation chunk of every token of the group by ReorderWidenMulAccumulate (pmaddwd on x86), giving the exact
// integer block sum in int32 lanes; the lanes are scaled by d_w * d_a in f32 once per block. The decoded chunk
// stays in a register for all tokens of the group, which is what makes prefill cheap. Min terms (q4_1/q5_1 via
// Q8_1.s, q2_K/q4_K/q5_K via Q8_K.bsums) are scalar per block, as in ggml's ggml_vec_dot_*_q8_* kernels.
//
// On AVX2 / AVX-512, q4_K and q6_K take the byte path of quant_dot_u8-inl.h instead (vpmaddubsw, 32 or 64 values
// per chunk; measured 1.2x (q4_K) and 2x (q6_K) faster for one token), and the 32-value-block types (q4_0, q4_1,
// q5_0, q5_1, q8_0, iq4_nl) its tiled path (4 rows x up to 4 tokens per pass, vpmaddubsw or AVX512-VNNI vpdpbusd;
// the int16 path was compute-bound for decode). The HWY_SCALAR target (one lane) runs the scalar reference.
// The lattice i-quants (iq2_*, iq3_*, iq1_*) are unpacked by quant_dot_lattice.h into magnitudes, sign bits and
// scales per 16 (MatMulLattice): on AVX2 / AVX-512 the byte path multiplies the magnitudes with sign-flipped
// activations, elsewhere the int16 path multiplies signed values; prefill unpacks tiles of rows once per token block.
// On AArch64 with dotprod, QuantMatMulRows first offers the product to the SDOT / SMMLA kernels (quant_dot_arm.h).

// AVX3_DL (AVX512-VNNI) is compiled in every Highway file (HWY_WANT_AVX3_DL, top-level CMakeLists.txt).
#include "ops/quant_dot.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/quant_dot_arm.h"
#include "ops/quant_dot_internal.h"
#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/quant_dot.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Must follow highway.h (per-target code), in this order: each builds on the ones before.
// clang-format off
#include "ops/quant_dot_decoders-inl.h"
#include "ops/quant_dot_u8-inl.h"
#include "ops/quant_gemm_panel-inl.h"
#include "ops/quant_dot_decode512-inl.h"
#include "ops/quant_dot_x16-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace qd = quant_dot_internal;
using namespace quant;  // NOLINT(google-build-using-namespace): block structs

using namespace qdec;  // NOLINT(google-build-using-namespace): decoders, tags, Acts

// ---- Kernel -----------------------------------------------------------------------------------------------------

// out[k] = dot(weight row w, activation row t0 + k) for k < kT. Named accumulators instead of arrays: scalable
// vector types (SVE) cannot be array elements.
template <class Dec, int kT>
HWY_NOINLINE void DotTokens(const uint8_t* HWY_RESTRICT w, const Acts& a, size_t t0, float* out) {
  const D16 d16;
  const D32 d32;
  const DF df;
  const size_t L = hn::Lanes(d16);
  auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
  float e[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = w + b * Dec::kBytes;
    const typename Dec::State st = Dec::Prepare(blk);
    const int16_t* q0 = a.Q16(t0, b);
    const int16_t* q1 = kT > 1 ? a.Q16(t0 + 1, b) : q0;
    const int16_t* q2 = kT > 2 ? a.Q16(t0 + 2, b) : q0;
    const int16_t* q3 = kT > 3 ? a.Q16(t0 + 3, b) : q0;
    auto i0 = hn::Zero(d32), i1 = hn::Zero(d32), i2 = hn::Zero(d32), i3 = hn::Zero(d32);
    auto u0 = hn::Zero(d32), u1 = hn::Zero(d32), u2 = hn::Zero(d32), u3 = hn::Zero(d32);
    for (size_t j = 0; j < Dec::kQK; j += L) {
      const V16 wv = Dec::Chunk(blk, st, j);
      i0 = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, q0 + j), i0, u0);
      if constexpr (kT > 1) {
        i1 = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, q1 + j), i1, u1);
      }
      if constexpr (kT > 2) {
        i2 = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, q2 + j), i2, u2);
      }
      if constexpr (kT > 3) {
        i3 = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, q3 + j), i3, u3);
      }
    }
    // Exact integer block sums; scale once per block (ggml: sumi * d_x * d_y).
    f0 = hn::MulAdd(hn::ConvertTo(df, hn::Add(i0, u0)), hn::Set(df, st.d * a.d[t0 * a.nb + b]), f0);
    if constexpr (Dec::kExtra) e[0] += Dec::Extra(st, a, t0, b);
    if constexpr (kT > 1) {
      f1 = hn::MulAdd(hn::ConvertTo(df, hn::Add(i1, u1)), hn::Set(df, st.d * a.d[(t0 + 1) * a.nb + b]), f1);
      if constexpr (Dec::kExtra) e[1] += Dec::Extra(st, a, t0 + 1, b);
    }
    if constexpr (kT > 2) {
      f2 = hn::MulAdd(hn::ConvertTo(df, hn::Add(i2, u2)), hn::Set(df, st.d * a.d[(t0 + 2) * a.nb + b]), f2);
      if constexpr (Dec::kExtra) e[2] += Dec::Extra(st, a, t0 + 2, b);
    }
    if constexpr (kT > 3) {
      f3 = hn::MulAdd(hn::ConvertTo(df, hn::Add(i3, u3)), hn::Set(df, st.d * a.d[(t0 + 3) * a.nb + b]), f3);
      if constexpr (Dec::kExtra) e[3] += Dec::Extra(st, a, t0 + 3, b);
    }
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, f0)) + e[0];
  if constexpr (kT > 1) out[1] = hn::GetLane(hn::SumOfLanes(df, f1)) + e[1];
  if constexpr (kT > 2) out[2] = hn::GetLane(hn::SumOfLanes(df, f2)) + e[2];
  if constexpr (kT > 3) out[3] = hn::GetLane(hn::SumOfLanes(df, f3)) + e[3];
}

// The int16 path, or (kU8, AVX2 / AVX-512 only) the byte path of quant_dot_u8-inl.h.
template <class Dec, int kT, bool kU8>
HWY_INLINE void Dot(const uint8_t* w, const Acts& a, size_t t0, float* out) {
#if PLM_QUANT_DOT_U8
  if constexpr (kU8) DotTokensU8<Dec, kT>(w, a, t0, out);
#endif
  if constexpr (!kU8) DotTokens<Dec, kT>(w, a, t0, out);
}

using Out = qd::Out;

// Rows [r0, r1) for the tokens [a.t_base, a.t_base + n_tokens) whose quants are widened in a.q16.
template <class Dec, bool kU8>
void MatMulRowsT(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, const Out& o, int64_t r0,
                 int64_t r1) {
  // Rows in tiles so that, for prefill, a tile of weights stays in cache while every token group passes over it.
  constexpr int64_t kRowTile = 16;
  const auto tb = static_cast<int64_t>(a.t_base);
  float s[4];
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t re = std::min(r1, rt + kRowTile);
    int64_t t = tb;
    for (; t + 4 <= tb + n_tokens; t += 4) {
      for (int64_t r = rt; r < re; ++r) {
        Dot<Dec, 4, kU8>(w_rows + static_cast<size_t>(r) * w_row_bytes, a, static_cast<size_t>(t), s);
        for (int k = 0; k < 4; ++k) o.Store(t + k, r, s[k]);
      }
    }
    const int64_t rest = tb + n_tokens - t;
    for (int64_t r = rt; r < re && rest > 0; ++r) {
      const uint8_t* w = w_rows + static_cast<size_t>(r) * w_row_bytes;
      const auto tt = static_cast<size_t>(t);
      if (rest == 1) Dot<Dec, 1, kU8>(w, a, tt, s);
      if (rest == 2) Dot<Dec, 2, kU8>(w, a, tt, s);
      if (rest == 3) Dot<Dec, 3, kU8>(w, a, tt, s);
      for (int64_t k = 0; k < rest; ++k) o.Store(t + k, r, s[k]);
    }
  }
}

// pass(count) once per block of tokens [a.t_base, a.t_base + count): widened activations (unless kU8) of up to
// ~256 KiB of tokens at a time (L2-sized); each block is one pass over the rows.
template <bool kU8, class Pass>
void ForTokenBlocks(Acts& a, int64_t n_tokens, const Pass& pass) {
  const size_t row16 = a.nb * a.qk;
  const auto per_block =
      static_cast<int64_t>(std::max<size_t>(4, (size_t{256} << 10) / (2 * std::max<size_t>(row16, 1))) / 4 * 4);
  std::vector<int16_t> q16(kU8 ? 0 : static_cast<size_t>(std::min(per_block, n_tokens)) * row16);
  a.q16 = q16.data();
  for (int64_t t0 = 0; t0 < n_tokens; t0 += per_block) {
    const int64_t count = std::min(per_block, n_tokens - t0);
    if constexpr (!kU8) WidenActs(a, static_cast<size_t>(t0), static_cast<size_t>(count), q16.data());
    a.t_base = static_cast<size_t>(t0);
    pass(count);
  }
}

template <class Dec, bool kU8 = false>
void MatMulTokenBlocks(const uint8_t* w_rows, size_t w_row_bytes, Acts& a, int64_t n_tokens, const Out& o, int64_t r0,
                       int64_t r1) {
  ForTokenBlocks<kU8>(a, n_tokens,
                      [&](int64_t count) { MatMulRowsT<Dec, kU8>(w_rows, w_row_bytes, a, count, o, r0, r1); });
}

// Lattice i-quants: the byte path (DecLatticeU8: magnitudes times sign-flipped int8 activations) where it exists,
// the int16 path (DecLattice) elsewhere; Src says where unpacked blocks come from (quant_dot_decoders-inl.h).
#if PLM_QUANT_DOT_U8
template <class Src>
using LatticeDec = DecLatticeU8<Src>;
#else
template <class Src>
using LatticeDec = DecLattice<Src>;
#endif

// Token count from which lattice rows are unpacked once per tile instead of once per group of up to 4 tokens.
constexpr int64_t kLatticeTileMinTokens = 8;

// Rows [r0, r1) of a lattice i-quant. Decode unpacks each block per group of up to 4 tokens. Prefill unpacks a tile of
// 16 rows (16 x nb LatticeBlocks of 336 bytes: 43 KiB for 2048 columns) once per token block and runs every token
// group over it, so the grid lookups are paid once per row and token block instead of once per 4 tokens.
template <class U>
void MatMulLattice(const uint8_t* w_rows, size_t w_row_bytes, Acts& a, int64_t n_tokens, const Out& o, int64_t r0,
                   int64_t r1) {
  constexpr bool kU8 = PLM_QUANT_DOT_U8 != 0;
  if (n_tokens < kLatticeTileMinTokens) {
#if PLM_QUANT_DOT_U8
    return MatMulTokenBlocks<typename LatticeDecode<U>::type, true>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
#else
    return MatMulTokenBlocks<DecLattice<LatticeUnpack<U>>>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
#endif
  }
  constexpr int64_t kRowTile = 16;
  std::vector<qd::LatticeBlock> tile(static_cast<size_t>(kRowTile) * a.nb);
  const size_t tile_row_bytes = a.nb * sizeof(qd::LatticeBlock);
  ForTokenBlocks<kU8>(a, n_tokens, [&](int64_t count) {
    for (int64_t rt = r0; rt < r1; rt += kRowTile) {
      const int64_t rows = std::min(r1 - rt, kRowTile);
      for (int64_t i = 0; i < rows; ++i) {
        const uint8_t* row = w_rows + static_cast<size_t>(rt + i) * w_row_bytes;
        for (size_t b = 0; b < a.nb; ++b) qd::Unpack<U>(row + b * U::kBytes, &tile[static_cast<size_t>(i) * a.nb + b]);
      }
      const Out ot{o.y + rt, o.y_stride, o.accumulate};  // tile row i is row rt + i
      MatMulRowsT<LatticeDec<LatticeStored>, kU8>(reinterpret_cast<const uint8_t*>(tile.data()), tile_row_bytes, a,
                                                  count, ot, 0, rows);
    }
  });
}

#if PLM_QUANT_DOT_U8
// Token count from which the panel GEMM replaces the tiled path.
constexpr int64_t kPanelMinTokens = 8;

// The byte path of 32-value blocks (quant_dot_u8-inl.h): tiles of kR rows x up to kT tokens (4 x 4 on AVX-512,
// 16 accumulators of its 32 registers; 4 x 2 with AVX2's 16), rows in tiles of 16 that stay in cache while every
// token group passes over them (prefill). Decode (one token) runs 4 rows per pass over the activation row.
template <class Dec, int kR>
void TileB32Tokens(int nt, const uint8_t* w, size_t w_row_bytes, const Acts& a, size_t t0, float* scratch, float* out) {
  switch (nt) {
#if HWY_TARGET == HWY_AVX2
    case 1: return TileB32<Dec, kR, 1>(w, w_row_bytes, a, t0, scratch, out);
#else
    case 1: return TileB32Decode<Dec, kR>(w, w_row_bytes, a, t0, scratch, out);  // two blocks per vector
#endif
    case 2: return TileB32<Dec, kR, 2>(w, w_row_bytes, a, t0, scratch, out);
    case 3: return TileB32<Dec, kR, 3>(w, w_row_bytes, a, t0, scratch, out);
    default: return TileB32<Dec, kR, 4>(w, w_row_bytes, a, t0, scratch, out);
  }
}

template <class Dec>
void MatMulB32(const uint8_t* w_rows, size_t w_row_bytes, Acts& a, int64_t n_tokens, const Out& o, int64_t r0,
               int64_t r1) {
  constexpr int kR = 4;
  constexpr int64_t kT = HWY_TARGET == HWY_AVX2 ? 2 : 4;
  constexpr int64_t kRowTile = 16;
  a.neg_o = -B32Offset<Dec>();
  // Prefill: rows repacked into panels (quant_gemm_panel-inl.h); the packing pays off from a few tokens on.
  if (n_tokens >= kPanelMinTokens) {
    return MatMulB32Panels<Dec>(w_rows, w_row_bytes, a, n_tokens, o.y, o.y_stride, o.accumulate, r0, r1);
  }
  std::vector<float> scratch(static_cast<size_t>(kR * kT) * (a.nb + 8));
  float s[kR * kT];
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t re = std::min(r1, rt + kRowTile);
    for (int64_t t = 0; t < n_tokens; t += kT) {
      const int nt = static_cast<int>(std::min(kT, n_tokens - t));
      const auto tt = static_cast<size_t>(t);
      int64_t r = rt;
      for (; r + kR <= re; r += kR) {
        TileB32Tokens<Dec, kR>(nt, w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, tt, scratch.data(),
                               s);
        for (int i = 0; i < kR; ++i) {
          for (int k = 0; k < nt; ++k) o.Store(t + k, r + i, s[i * nt + k]);
        }
      }
      for (; r < re; ++r) {
        TileB32Tokens<Dec, 1>(nt, w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, a, tt, scratch.data(), s);
        for (int k = 0; k < nt; ++k) o.Store(t + k, r, s[k]);
      }
    }
  }
}
#endif

// QuantActs::d / s / sums (see quant_dot.h).
void PrepareQuantActsImpl(DType wt, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, int64_t n,
                          QuantActs* out) {
  const DType at = GetDTypeInfo(wt).vec_dot_type;
  const size_t qk = GetDTypeInfo(at).block_size, block_bytes = GetDTypeInfo(at).type_size;
  const size_t nb = static_cast<size_t>(n) / qk, nt = static_cast<size_t>(n_tokens);
  out->wt = wt;
  out->rows = act;
  out->row_bytes = act_row_bytes;
  out->n_tokens = n_tokens;
  out->n = n;
  out->d.resize(nt * nb);
  out->s.resize(at == DType::kQ8_1 ? nt * nb : 0);
  out->sums.resize(at == DType::kQ8_0 ? nt * nb : 0);
  // Sum of 32 int8 quants: as unsigned bytes (xor 0x80 adds 128 to each) through psadbw-style SumsOf8.
#if HWY_TARGET != HWY_SCALAR
  const hn::CappedTag<uint8_t, 32> du8;
  const size_t L = hn::Lanes(du8);
  const auto bias = hn::Set(du8, 0x80);
#endif
  out->gd.clear();
  out->gsums.clear();
  out->gms.clear();
#if PLM_QUANT_DOT_U8
  // Group arrays of the k-quant prefill panels (quant_gemm_panel-inl.h), from Q8_K's d and bsums (sums of 16).
  if ((wt == DType::kQ4_K || wt == DType::kQ6_K) && n_tokens >= kPanelMinTokens) {
    const size_t per = wt == DType::kQ4_K ? 8 : 16, G = nb * per;
    out->gd.resize(nt * G);
    if (wt == DType::kQ4_K) {
      out->gms.resize(nt * G);
    } else {
      out->gsums.resize(nt * G);
    }
    for (size_t t = 0; t < nt; ++t) {
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = act + t * act_row_bytes + b * block_bytes;
        const float d = qd::LoadF32(blk);
        const uint8_t* bs = blk + offsetof(BlockQ8_K, bsums);
        for (size_t j = 0; j < per; ++j) {
          const size_t k = t * G + b * per + j;
          out->gd[k] = d;
          if (wt == DType::kQ4_K) {
            out->gms[k] = d * static_cast<float>(qd::LoadI16(bs + 4 * j) + qd::LoadI16(bs + 4 * j + 2));
          } else {
            out->gsums[k] = qd::LoadI16(bs + 2 * j);
          }
        }
      }
    }
  }
#endif
  for (size_t t = 0; t < nt; ++t) {
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* blk = act + t * act_row_bytes + b * block_bytes;
      out->d[t * nb + b] = at == DType::kQ8_K ? qd::LoadF32(blk) : qd::LoadF16(blk);
      if (at == DType::kQ8_1) out->s[t * nb + b] = qd::LoadF16(blk + 2);
      if (at == DType::kQ8_0) {
        const uint8_t* qs = blk + offsetof(BlockQ8_0, qs);
#if HWY_TARGET == HWY_SCALAR
        int32_t sum = 0;
        for (size_t j = 0; j < 32; ++j) sum += static_cast<int8_t>(qs[j]);
        out->sums[t * nb + b] = sum;
#else
        uint64_t sum = 0;
        for (size_t j = 0; j < 32; j += L) {
          const hn::Repartition<uint64_t, decltype(du8)> d64;
          sum += hn::GetLane(hn::SumOfLanes(d64, hn::SumsOf8(hn::Xor(hn::LoadU(du8, qs + j), bias))));
        }
        out->sums[t * nb + b] = static_cast<int32_t>(sum) - 32 * 128;
#endif
      }
    }
  }
}

// The kernels' view of prepared activations.
Acts MakeActs(const QuantActs& act) {
  const DType at = GetDTypeInfo(act.wt).vec_dot_type;
  Acts a;
  a.rows = act.rows;
  a.row_bytes = act.row_bytes;
  a.block_bytes = GetDTypeInfo(at).type_size;
  a.qs_offset = at == DType::kQ8_0 ? offsetof(BlockQ8_0, qs)
                                   : (at == DType::kQ8_1 ? offsetof(BlockQ8_1, qs) : offsetof(BlockQ8_K, qs));
  a.qk = GetDTypeInfo(at).block_size;
  a.nb = static_cast<size_t>(act.n) / a.qk;
  a.d = act.d.data();
  a.s = act.s.data();
  a.sums = act.sums.data();
  a.neg_o = 0;
  a.q16 = nullptr;
  a.t_base = 0;
  return a;
}

void QuantMatMulRowsImpl(const QuantActs& act, const uint8_t* w_rows, size_t w_row_bytes, float* y, int64_t y_stride,
                         bool accumulate, int64_t r0, int64_t r1) {
  const Out o{y, y_stride, accumulate};
  const DType wt = act.wt;
  const int64_t n = act.n, n_tokens = act.n_tokens;
  const bool generic_lanes = 32 % hn::Lanes(D16()) == 0 && hn::Lanes(D16()) >= 8;
  if (HWY_TARGET == HWY_SCALAR || !generic_lanes) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t t = 0; t < n_tokens; ++t) {
        o.Store(t, r,
                reference::QuantDot(wt, w_rows + static_cast<size_t>(r) * w_row_bytes,
                                    act.rows + static_cast<size_t>(t) * act.row_bytes, n));
      }
    }
    return;
  }
  Acts a = MakeActs(act);
#if PLM_QUANT_DOT_U8
  switch (wt) {
    case DType::kQ4_0: return MatMulB32<B32Q4_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ4_1: return MatMulB32<B32Q4_1>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ5_0: return MatMulB32<B32Q5_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ5_1: return MatMulB32<B32Q5_1>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ8_0: return MatMulB32<B32Q8_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ4_NL: return MatMulB32<B32IQ4_NL>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    default: break;
  }
#endif
  switch (wt) {
    case DType::kQ4_0: return MatMulTokenBlocks<DecQ4_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ4_1: return MatMulTokenBlocks<DecQ4_1>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ5_0: return MatMulTokenBlocks<DecQ5_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ5_1: return MatMulTokenBlocks<DecQ5_1>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ8_0: return MatMulTokenBlocks<DecQ8_0>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ4_NL: return MatMulTokenBlocks<DecIQ4_NL>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ2_K: return MatMulTokenBlocks<DecQ2_K>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ3_K: return MatMulTokenBlocks<DecQ3_K>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
#if PLM_QUANT_DOT_U8
    case DType::kQ4_K:
      if (!act.gd.empty()) {
        return MatMulKPanels<PanelSrcQ4_K>(w_rows, w_row_bytes, a, act.gd.data(), nullptr, act.gms.data(), n_tokens, y,
                                           y_stride, accumulate, r0, r1);
      }
      return MatMulTokenBlocks<DecQ4_KU8, true>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ6_K:
      if (!act.gd.empty()) {
        return MatMulKPanels<PanelSrcQ6_K>(w_rows, w_row_bytes, a, act.gd.data(), act.gsums.data(), nullptr, n_tokens,
                                           y, y_stride, accumulate, r0, r1);
      }
      return MatMulTokenBlocks<DecQ6_KU8, true>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
#else
    case DType::kQ4_K: return MatMulTokenBlocks<DecQ45_K<false>>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kQ6_K: return MatMulTokenBlocks<DecQ6_K>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
#endif
    case DType::kQ5_K: return MatMulTokenBlocks<DecQ45_K<true>>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ4_XS: return MatMulTokenBlocks<DecIQ4_XS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ2_XXS: return MatMulLattice<qd::UnpackIQ2_XXS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ2_XS: return MatMulLattice<qd::UnpackIQ2_XS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ2_S: return MatMulLattice<qd::UnpackIQ2_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ3_XXS: return MatMulLattice<qd::UnpackIQ3_XXS>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ3_S: return MatMulLattice<qd::UnpackIQ3_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ1_S: return MatMulLattice<qd::UnpackIQ1_S>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    case DType::kIQ1_M: return MatMulLattice<qd::UnpackIQ1_M>(w_rows, w_row_bytes, a, n_tokens, o, r0, r1);
    default: return;
  }
}

// Whether QuantMatMulRowsX16Impl has its own kernel for t here (otherwise interleaving only adds a deinterleave):
// the registry's kCapX16Kernels types on AVX-512; q8_0's kernel needs AVX512-VNNI.
bool InterleavedIsFasterImpl(DType t) {
#if PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
  return GetDTypeInfo(t).Has(kCapX16Kernels) && (t != DType::kQ8_0 || kVnni);
#else
  (void)t;
  return false;
#endif
}

#if PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
// Whole units [r, re) of interleaved rows of type kT: panels for prompts, the decode kernels otherwise.
template <DType kT>
void X16Rows(const uint8_t* w, size_t w_row_bytes, const QuantActs& act, const Acts& a, const Out& o, int64_t r,
             int64_t re) {
  constexpr int64_t R = quant::kInterleaveRows;
  const int64_t n_tokens = act.n_tokens;
  if (n_tokens >= kPanelMinTokens) {
    if constexpr (kT == DType::kQ6_K) {
      MatMulX16PanelsQ6K(w, w_row_bytes, a, act.gd.data(), act.gsums.data(), n_tokens, o.y, o.y_stride, o.accumulate, r,
                         re);
    } else if constexpr (kT == DType::kQ4_K) {
      MatMulX16PanelsQ4K(w, w_row_bytes, a, act.gd.data(), act.gms.data(), n_tokens, o.y, o.y_stride, o.accumulate, r,
                         re);
    } else {
      MatMulX16Panels<kT>(w, w_row_bytes, a, n_tokens, o.y, o.y_stride, o.accumulate, r, re);
    }
    return;
  }
  alignas(64) float tmp[R];
  for (int64_t u = r; u < re; u += R) {
    // Tokens inner: a unit (16 rows) stays in cache for the second and later tokens.
    for (int64_t t = 0; t < n_tokens; ++t) {
      const uint8_t* wu = w + static_cast<size_t>(u) * w_row_bytes;
      if constexpr (kT == DType::kQ4_K || kT == DType::kQ6_K) {
        X16DecodeK<kT>(wu, a, static_cast<size_t>(t), tmp);
      } else {
        X16Decode<kT>(wu, a, static_cast<size_t>(t), tmp);
      }
      for (int i = 0; i < R; ++i) o.Store(t, u + i, tmp[i]);
    }
  }
}
#endif

// Rows [r0, r1) of q4_0 / q5_0 / q8_0 / q4_K / q6_K weights whose first n_out / 16 * 16 rows are interleaved
// (tensor/quant/interleave.h). Targets without the interleaved kernel and partial units go through the plain path on up
// to two units deinterleaved into a per-thread buffer.
void QuantMatMulRowsX16Impl(const QuantActs& act, const uint8_t* w, size_t w_row_bytes, int64_t n_out, float* y,
                            int64_t y_stride, bool accumulate, int64_t r0, int64_t r1) {
  constexpr int64_t R = quant::kInterleaveRows;
  const DType wt = act.wt;
  const int64_t n16 = n_out / R * R;
  if (r1 > n16) {  // the plain tail rows
    QuantMatMulRowsImpl(act, w, w_row_bytes, y, y_stride, accumulate, std::max(r0, n16), r1);
    r1 = n16;
  }
  const size_t unit_bytes = static_cast<size_t>(R) * w_row_bytes;
  const auto plain = [&](int64_t lo, int64_t hi) {  // [lo, hi) within the units
    thread_local std::vector<uint8_t> buf;
    buf.resize(2 * unit_bytes);
    while (lo < hi) {
      const int64_t base = lo / R * R, end = std::min(base + 2 * R, (hi + R - 1) / R * R);
      for (int64_t u = base; u < end; u += R) {
        quant::DeinterleaveUnit(wt, w + static_cast<size_t>(u) * w_row_bytes, w_row_bytes,
                                buf.data() + static_cast<size_t>(u - base) * w_row_bytes);
      }
      QuantMatMulRowsImpl(act, buf.data(), w_row_bytes, y + base, y_stride, accumulate, lo - base,
                          std::min(hi, end) - base);
      lo = std::min(hi, end);
    }
  };
  if (!InterleavedIsFasterImpl(wt)) return plain(r0, r1);
#if PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
  const Acts a = MakeActs(act);
  int64_t r = std::min(r1, (r0 + R - 1) / R * R);
  plain(r0, r);  // a leading partial unit
  const int64_t re = std::max(r, r1 / R * R);
  const Out o{y, y_stride, accumulate};
  switch (wt) {
    case DType::kQ4_0: X16Rows<DType::kQ4_0>(w, w_row_bytes, act, a, o, r, re); break;
    case DType::kQ5_0: X16Rows<DType::kQ5_0>(w, w_row_bytes, act, a, o, r, re); break;
    case DType::kQ8_0: X16Rows<DType::kQ8_0>(w, w_row_bytes, act, a, o, r, re); break;
    case DType::kQ4_K: X16Rows<DType::kQ4_K>(w, w_row_bytes, act, a, o, r, re); break;
    default: X16Rows<DType::kQ6_K>(w, w_row_bytes, act, a, o, r, re); break;
  }
  plain(re, r1);  // a trailing partial unit
#endif
}

const char* TargetNameImpl() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(QuantMatMulRowsImpl);
HWY_EXPORT(PrepareQuantActsImpl);
HWY_EXPORT(QuantMatMulRowsX16Impl);
HWY_EXPORT(InterleavedIsFasterImpl);
HWY_EXPORT(TargetNameImpl);

bool HasQuantDot(DType wt) {
  return GetDTypeInfo(wt).Has(kCapQuantDot);
}

size_t ActivationRowBytes(DType wt, int64_t n) {
  if (!HasQuantDot(wt)) return 0;
  const auto& at = quant::GetQuantTraits(GetDTypeInfo(wt).vec_dot_type);
  return static_cast<size_t>(n) / GetDTypeInfo(at.type).block_size * GetDTypeInfo(at.type).type_size;
}

void PrepareQuantActs(DType wt, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, int64_t n, QuantActs* out) {
  HWY_DYNAMIC_DISPATCH(PrepareQuantActsImpl)(wt, act, act_row_bytes, n_tokens, n, out);
}

void QuantMatMulRows(const QuantActs& act, const uint8_t* w_rows, size_t w_row_bytes, float* y, int64_t y_stride,
                     bool accumulate, int64_t r0, int64_t r1) {
  if (!HasQuantDot(act.wt) || r1 <= r0 || act.n_tokens <= 0) return;
  if (arm_dot::MatMulRows(act, w_rows, w_row_bytes, y, y_stride, accumulate, r0, r1)) return;
  HWY_DYNAMIC_DISPATCH(QuantMatMulRowsImpl)(act, w_rows, w_row_bytes, y, y_stride, accumulate, r0, r1);
}

void QuantMatMulRowsInterleaved(const QuantActs& act, const uint8_t* w, size_t w_row_bytes, int64_t n_out, float* y,
                                int64_t y_stride, bool accumulate, int64_t r0, int64_t r1) {
  if (!quant::HasInterleavedLayout(act.wt) || r1 <= r0 || act.n_tokens <= 0) return;
  HWY_DYNAMIC_DISPATCH(QuantMatMulRowsX16Impl)(act, w, w_row_bytes, n_out, y, y_stride, accumulate, r0, r1);
}

std::string QuantKernelsName() {
  std::string name = HWY_DYNAMIC_DISPATCH(TargetNameImpl)();
  if (ActiveArmDotLevel() == ArmDotLevel::kDotProd) name += "+DOTPROD";
  if (ActiveArmDotLevel() == ArmDotLevel::kI8mm) name += "+I8MM";
  return name;
}

bool InterleavedIsFaster(DType t) {
  return HWY_DYNAMIC_DISPATCH(InterleavedIsFasterImpl)(t);
}

void QuantMatMulRows(DType wt, const uint8_t* w_rows, size_t w_row_bytes, int64_t n, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate, int64_t r0,
                     int64_t r1) {
  if (!HasQuantDot(wt) || r1 <= r0 || n_tokens <= 0) return;
  QuantActs prepared;
  PrepareQuantActs(wt, act, act_row_bytes, n_tokens, n, &prepared);
  QuantMatMulRows(prepared, w_rows, w_row_bytes, y, y_stride, accumulate, r0, r1);
}

}  // namespace pocketlm
#endif
