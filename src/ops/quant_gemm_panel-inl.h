// Prefill GEMM for AVX2 / AVX-512 (included by quant_dot.cpp per target, after quant_dot_u8-inl.h): many tokens
// times quantized weight rows, with the weight rows repacked per call into a cache-resident panel.
//
// Why: the tiled byte path (TileB32) reduces every (row, token, block) to its own 8-lane vector and pays an
// int -> float conversion and an FMA for each; on 2 cores that conversion work, not the integer multiplies, limits
// prefill. Here P weight rows (P = 32 on AVX-512 as two vectors of 16, 8 on AVX2) are interleaved 4 codes at a
// time, as BLIS packs a panel of A and as llama.cpp's repacked AVX-512 GEMM lays out q4_0 (8 rows): one vector
// holds codes k..k+3 of 16 (8) rows, so one vpdpbusd with the 4 activation codes k..k+3 of one token broadcast
// (vpbroadcastd) accumulates 4 products into each row's int32 lane. After a scale group (32 values: 8 such steps) each
// lane holds the exact integer dot of one row over the group, and one conversion + one FMA by (d_w of the P rows) *
// d_a(token) scales all P rows at once. The panel is packed once per call and reused for every token, so its cost is
// spread over the prompt; decode (few tokens) keeps the tiled path. Measured on the Qwen2-0.5B-shaped q4_0 model (2
// threads, 256-token prompt): P = 16 with 8 / 12 / 14 tokens per tile 407 / 463 / 478 tokens/s; P = 32 with 6 / 7
// tokens 559 / 586 (each activation word loaded feeds two vectors: fewer loads per vpdpbusd).
//
// Panel format (per scale group g of kQ * 4 values, P rows): codes[g][q][row][4] unsigned bytes (codes = value +
// o, o the type's offset: 8 for q4_0, 16 for q5_0, 128 for signed types with VNNI; 0 for q4_1 / q5_1 whose
// values are unsigned already), scale[g][row] = d_w, and for q4_1 / q5_1 min[g][row] = m_w. Signed types without
// VNNI keep their signed values and take vpmaddubsw's sign trick (|w| times sign(y, w)), as TileB32 does.
//
// Per (token, group) the activation side supplies d_a (float), -o * sum(y) (int32, seeds the group's integer
// accumulator, so the integer sum is exactly ggml's sum over the block) and for min types s = d_a * sum(y)
// (Q8_1's s field). Result per (row, token): sum over groups of float(isum) * (d_w * d_a) [+ m_w * s], one
// rounded partial per group, the same terms as ggml_vec_dot_q4_0_q8_0 adds.
#if defined(POCKETLM_OPS_QUANT_GEMM_PANEL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_QUANT_GEMM_PANEL_INL_H_
#undef POCKETLM_OPS_QUANT_GEMM_PANEL_INL_H_
#else
#define POCKETLM_OPS_QUANT_GEMM_PANEL_INL_H_
#endif

#if PLM_QUANT_DOT_U8
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace qdec {

// ---- Vector layer: P int32 / float lanes (P rows of a panel) ---------------------------------------------------
#if HWY_TARGET == HWY_AVX2
constexpr int kPanelRows = 8, kPanelVecs = 1;
constexpr int kPanelTokens = 4;  // 2 * 4 accumulators + weights of AVX2's 16 registers
using PI = __m256i;
using PF = __m256;
HWY_INLINE PI PLoadI(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const PI*>(p));
}
HWY_INLINE PI PBcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
HWY_INLINE PI PSetI(int32_t v) {
  return _mm256_set1_epi32(v);
}
HWY_INLINE PI PZeroI() {
  return _mm256_setzero_si256();
}
HWY_INLINE PF PZeroF() {
  return _mm256_setzero_ps();
}
HWY_INLINE PF PLoadF(const float* p) {
  return _mm256_loadu_ps(p);
}
HWY_INLINE PF PSetF(float v) {
  return _mm256_set1_ps(v);
}
HWY_INLINE PF PCvt(PI v) {
  return _mm256_cvtepi32_ps(v);
}
HWY_INLINE PF PMul(PF a, PF b) {
  return _mm256_mul_ps(a, b);
}
HWY_INLINE PF PFma(PF a, PF b, PF c) {
  return _mm256_fmadd_ps(a, b, c);
}
HWY_INLINE void PStoreF(float* p, PF v) {
  _mm256_storeu_ps(p, v);
}
// acc + u . s per 4 lanes (u unsigned, |u0 s0 + u1 s1| < 2^15).
HWY_INLINE PI PDotU(PI acc, PI u, PI s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
HWY_INLINE PI PAbs8(PI w) {
  return _mm256_abs_epi8(w);
}
// acc + w . y per 4 lanes for signed w, given |w|.
HWY_INLINE PI PDotS(PI acc, PI w_abs, PI w, PI y) {
  return PDotU(acc, w_abs, _mm256_sign_epi8(y, w));
}
#else
constexpr int kPanelRows = 32, kPanelVecs = 2;  // two vectors of 16 rows
constexpr int kPanelTokens = 7;                 // 2 * 2 * 7 accumulators of the 32 registers
using PI = __m512i;
using PF = __m512;
HWY_INLINE PI PLoadI(const uint8_t* p) {
  return _mm512_loadu_si512(p);
}
HWY_INLINE PI PBcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
HWY_INLINE PI PSetI(int32_t v) {
  return _mm512_set1_epi32(v);
}
HWY_INLINE PI PZeroI() {
  return _mm512_setzero_si512();
}
HWY_INLINE PF PZeroF() {
  return _mm512_setzero_ps();
}
HWY_INLINE PF PLoadF(const float* p) {
  return _mm512_loadu_ps(p);
}
HWY_INLINE PF PSetF(float v) {
  return _mm512_set1_ps(v);
}
HWY_INLINE PF PCvt(PI v) {
  return _mm512_cvtepi32_ps(v);
}
HWY_INLINE PF PMul(PF a, PF b) {
  return _mm512_mul_ps(a, b);
}
HWY_INLINE PF PFma(PF a, PF b, PF c) {
  return _mm512_fmadd_ps(a, b, c);
}
HWY_INLINE void PStoreF(float* p, PF v) {
  _mm512_storeu_ps(p, v);
}
#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd, written out in its EVEX form (see DotU8Raw in quant_dot_u8-inl.h: Highway's AVX3_DL attributes lack
// avx512vnni, so the intrinsic is unavailable).
HWY_INLINE PI PDotU(PI acc, PI u, PI s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}
#else
HWY_INLINE PI PDotU(PI acc, PI u, PI s) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}
#endif
HWY_INLINE PI PAbs8(PI w) {
  return _mm512_abs_epi8(w);
}
// AVX-512 has no vpsignb: negate y where w < 0 (w = 0 multiplies by |w| = 0 anyway).
HWY_INLINE PI PDotS(PI acc, PI w_abs, PI w, PI y) {
  return PDotU(acc, w_abs, _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(w), _mm512_setzero_si512(), y));
}
#endif

// ---- Panel and activation descriptions --------------------------------------------------------------------------

struct Panel {
  const uint8_t* codes;  // (groups, kQ, kPanelRows, 4)
  const float* scale;    // (groups, kPanelRows)
  const float* min;      // (groups, kPanelRows) or null
};

struct PanelActs {
  const uint8_t* rows;  // token t's quants: rows + t * row_bytes + yoff[g] for group g
  size_t row_bytes;
  size_t groups;
  const uint32_t* yoff;  // (groups)
  const float* d;        // (n_tokens, groups)
  const int32_t* sums;   // (n_tokens, groups) or null: sum(y) over the group
  int32_t neg_o;         // -o: sums * neg_o seeds the group's integer sum
  const float* ms;       // (n_tokens, groups) or null: d_a * sum(y) over the group (min types)
};

// out[t * out_stride + i] (= or +=) dot(panel row i, token t0 + t) for i < n_rows, t < kT. The panel's rows are
// kPanelVecs vectors of kLanes rows: every broadcast activation word feeds kPanelVecs products, so loads per
// vpdpbusd are (kPanelVecs + kT) / (kPanelVecs * kT) instead of (1 + kT) / kT.
template <int kQ, int kT, bool kOff, bool kMin, bool kSigned>
HWY_NOINLINE void PanelTile(const Panel& p, const PanelActs& a, size_t t0, float* out, size_t out_stride, int n_rows,
                            bool accumulate) {
  constexpr int kV = kPanelVecs, L = kPanelRows / kPanelVecs;
  PF acc[kV][kT];
  for (int v = 0; v < kV; ++v) {
    for (int t = 0; t < kT; ++t) acc[v][t] = PZeroF();
  }
  const uint8_t* y[kT];
  for (int t = 0; t < kT; ++t) y[t] = a.rows + (t0 + t) * a.row_bytes;
  const size_t G = a.groups;
  for (size_t g = 0; g < G; ++g) {
    PI isum[kV][kT];
    for (int t = 0; t < kT; ++t) {
      const PI init = kOff ? PSetI(a.neg_o * a.sums[(t0 + t) * G + g]) : PZeroI();
      for (int v = 0; v < kV; ++v) isum[v][t] = init;
    }
    const uint8_t* codes = p.codes + g * (kQ * kPanelRows * 4);
    const uint32_t yo = a.yoff[g];
    for (int q = 0; q < kQ; ++q) {
      PI w[kV], wa[kV];
      for (int v = 0; v < kV; ++v) {
        w[v] = PLoadI(codes + q * (kPanelRows * 4) + v * (L * 4));
        if constexpr (kSigned) wa[v] = PAbs8(w[v]);
      }
      for (int t = 0; t < kT; ++t) {
        const PI yb = PBcast32(y[t] + yo + 4 * q);
        for (int v = 0; v < kV; ++v) {
          if constexpr (kSigned) {
            isum[v][t] = PDotS(isum[v][t], wa[v], w[v], yb);
          } else {
            isum[v][t] = PDotU(isum[v][t], w[v], yb);
          }
        }
      }
    }
    for (int v = 0; v < kV; ++v) {
      const PF dw = PLoadF(p.scale + g * kPanelRows + v * L);
      for (int t = 0; t < kT; ++t) {
        acc[v][t] = PFma(PCvt(isum[v][t]), PMul(dw, PSetF(a.d[(t0 + t) * G + g])), acc[v][t]);
      }
      if constexpr (kMin) {
        const PF mw = PLoadF(p.min + g * kPanelRows + v * L);
        for (int t = 0; t < kT; ++t) acc[v][t] = PFma(mw, PSetF(a.ms[(t0 + t) * G + g]), acc[v][t]);
      }
    }
  }
  alignas(64) float tmp[kPanelRows];
  for (int t = 0; t < kT; ++t) {
    float* o = out + t * out_stride;
    if (n_rows == kPanelRows && !accumulate) {
      for (int v = 0; v < kV; ++v) PStoreF(o + v * L, acc[v][t]);
      continue;
    }
    for (int v = 0; v < kV; ++v) PStoreF(tmp + v * L, acc[v][t]);
    for (int i = 0; i < n_rows; ++i) o[i] = accumulate ? o[i] + tmp[i] : tmp[i];
  }
}

// The last n_tokens % kPanelTokens tokens: PanelTile with kT = rest.
template <int kQ, bool kOff, bool kMin, bool kSigned, int kT = 1>
void PanelRest(size_t rest, const Panel& p, const PanelActs& a, size_t t0, float* out, size_t out_stride, int n_rows,
               bool accumulate) {
  if constexpr (kT < kPanelTokens) {
    if (rest == kT) return PanelTile<kQ, kT, kOff, kMin, kSigned>(p, a, t0, out, out_stride, n_rows, accumulate);
    PanelRest<kQ, kOff, kMin, kSigned, kT + 1>(rest, p, a, t0, out, out_stride, n_rows, accumulate);
  }
}

template <int kQ, bool kOff, bool kMin, bool kSigned>
void PanelTokens(const Panel& p, const PanelActs& a, size_t n_tokens, float* out, size_t out_stride, int n_rows,
                 bool accumulate) {
  size_t t = 0;
  for (; t + kPanelTokens <= n_tokens; t += kPanelTokens) {
    PanelTile<kQ, kPanelTokens, kOff, kMin, kSigned>(p, a, t, out + t * out_stride, out_stride, n_rows, accumulate);
  }
  PanelRest<kQ, kOff, kMin, kSigned>(n_tokens - t, p, a, t, out + t * out_stride, out_stride, n_rows, accumulate);
}

// ---- Packing ------------------------------------------------------------------------------------------------------
// A source type says how one weight row turns into 32-code chunks (Chunk: chunk c of the row, word q = codes
// 4q..4q+3) and per-group scales. A chunk is one group of 32 values (kQ = 8) or two groups of 16 (kQ = 4): in both
// cases word q of chunk c lands at codes + c * 32 * kPanelRows + q * 4 * kPanelRows, so one packer serves all.
// Units are the row's blocks (super-blocks for the k-quants): kChunks chunks and kGroups groups each.

// Codes as the panel stores them: B32Codes (unsigned, or xor 0x80 with VNNI), except that signed types without
// VNNI stay signed for the sign trick.
template <class Dec>
constexpr bool kPanelSigned = Dec::kSigned && !kVnni;

// 32-value-block types (decoders of quant_dot_u8-inl.h): one block, one chunk, one group.
template <class Dec>
struct PanelSrcB32 {
  static constexpr int kQ = 8;
  static constexpr size_t kChunks = 1, kGroups = 1, kUnitBytes = Dec::kBytes;
  static constexpr bool kOff = B32Offset<Dec>() != 0, kMin = Dec::kMin, kSigned = kPanelSigned<Dec>;
  static constexpr int32_t kNegO = -B32Offset<Dec>();
  static HWY_INLINE V256 Chunk(const uint8_t* row, size_t c) {
    const uint8_t* blk = row + c * Dec::kBytes;
    return kSigned ? Dec::Weights(blk) : B32Codes<Dec>(blk);
  }
  // scale[g * kPanelRows] (and min) for the groups g of unit u.
  static HWY_INLINE void Scales(const uint8_t* row, size_t u, float* scale, float* min) {
    scale[0] = F16At(row + u * Dec::kBytes);  // d is the first field of every 32-value-block type
    if constexpr (kMin) min[0] = Dec::M(row + u * Dec::kBytes);
  }
};

// q4_K: x = d sc_j q - dmin m_j, q in 0..15, 8 groups of 32 per super-block (dequantize_row_q4_K): group 2i holds the
// low nibbles of qs[32i..32i+32), group 2i+1 the high ones. The min term goes through min = -dmin m_j times
// d_a sum(y) over the group.
struct PanelSrcQ4_K {
  static constexpr int kQ = 8;
  static constexpr size_t kChunks = 8, kGroups = 8, kUnitBytes = sizeof(BlockQ4_K);
  static constexpr bool kOff = false, kMin = true, kSigned = false;
  static constexpr int32_t kNegO = 0;
  static HWY_INLINE V256 Chunk(const uint8_t* row, size_t c) {
    const uint8_t* qs = row + (c / 8) * kUnitBytes + offsetof(BlockQ4_K, qs) + 32 * ((c % 8) / 2);
    const V256 raw = _mm256_loadu_si256(reinterpret_cast<const V256*>(qs));
    const V256 nib = (c % 2) == 0 ? raw : _mm256_srli_epi16(raw, 4);
    return _mm256_and_si256(nib, _mm256_set1_epi8(0x0F));
  }
  static HWY_INLINE void Scales(const uint8_t* row, size_t u, float* scale, float* min) {
    const uint8_t* blk = row + u * kUnitBytes;
    uint8_t sc[8], m[8];
    qd::UnpackK4Scales(blk + offsetof(BlockQ4_K, scales), sc, m);
    const float d = F16At(blk + offsetof(BlockQ4_K, d)), dmin = F16At(blk + offsetof(BlockQ4_K, dmin));
    for (int g = 0; g < 8; ++g) {
      scale[g * kPanelRows] = d * static_cast<float>(sc[g]);
      min[g * kPanelRows] = -dmin * static_cast<float>(m[g]);
    }
  }
};

// q6_K: x = d sc_s (q - 32), q in 0..63, 16 groups of 16 per super-block (dequantize_row_q6_K): values
// 128h + 32k + l (half h, quarter k, l < 32) have the low (k < 2) or high nibble of ql[64h + 32(k & 1) + l] and
// bits 2k..2k+1 of qh[32h + l]; chunk 4h + k is groups 8h + 2k and 8h + 2k + 1. Codes are q, offset o = 32.
struct PanelSrcQ6_K {
  static constexpr int kQ = 4;
  static constexpr size_t kChunks = 8, kGroups = 16, kUnitBytes = sizeof(BlockQ6_K);
  static constexpr bool kOff = true, kMin = false, kSigned = false;
  static constexpr int32_t kNegO = -32;
  static HWY_INLINE V256 Chunk(const uint8_t* row, size_t c) {
    const uint8_t* blk = row + (c / 8) * kUnitBytes;
    const size_t h = (c % 8) / 4, k = c % 4;
    const V256 ql =
        _mm256_loadu_si256(reinterpret_cast<const V256*>(blk + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (k & 1)));
    const V256 qh = _mm256_loadu_si256(reinterpret_cast<const V256*>(blk + offsetof(BlockQ6_K, qh) + 32 * h));
    const V256 mask4 = _mm256_set1_epi8(0x0F);
    const V256 lo = _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), mask4);
    const V256 hi =
        _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(static_cast<int>(2 * k))), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
  static HWY_INLINE void Scales(const uint8_t* row, size_t u, float* scale, float*) {
    const uint8_t* blk = row + u * kUnitBytes;
    const float d = F16At(blk + offsetof(BlockQ6_K, d));
    const auto* sc = reinterpret_cast<const int8_t*>(blk + offsetof(BlockQ6_K, scales));
    for (int g = 0; g < 16; ++g) scale[g * kPanelRows] = d * static_cast<float>(sc[g]);
  }
};

// The panel of weight rows [0, n_rows) (n_rows <= kPanelRows; missing rows are zero) of n_units units each.
// codes: n_units * kChunks * 32 * kPanelRows bytes; scale, min: n_units * kGroups * kPanelRows floats.
template <class Src>
void PackPanel(const uint8_t* w, size_t w_row_bytes, int n_rows, size_t n_units, uint8_t* codes, float* scale,
               float* min) {
  constexpr size_t kChunkBytes = 32 * kPanelRows;
  const size_t n_chunks = n_units * Src::kChunks, n_groups = n_units * Src::kGroups;
  if (n_rows < kPanelRows) {
    std::memset(codes, 0, n_chunks * kChunkBytes);
    std::fill(scale, scale + n_groups * kPanelRows, 0.0f);
    if (Src::kMin) std::fill(min, min + n_groups * kPanelRows, 0.0f);
  }
  // Four rows at a time: a 4 x 8 transpose of 32-bit words (4 codes each) per chunk, within 128-bit lanes, so
  // that word q of rows i..i+3 lands at codes[c][q][i..i+3].
  for (int i = 0; i < n_rows; i += 4) {
    const int rows_here = std::min(4, n_rows - i);
    const uint8_t* r[4];
    for (int k = 0; k < 4; ++k) r[k] = w + static_cast<size_t>(i + std::min(k, rows_here - 1)) * w_row_bytes;
    for (size_t c = 0; c < n_chunks; ++c) {
      V256 v[4];
      for (int k = 0; k < 4; ++k) v[k] = Src::Chunk(r[k], c);
      // t0 = words (0, 4) of the 4 rows, t1 = (1, 5), t2 = (2, 6), t3 = (3, 7): row k in dword k of each lane.
      const V256 a01 = _mm256_unpacklo_epi32(v[0], v[1]), b01 = _mm256_unpackhi_epi32(v[0], v[1]);
      const V256 a23 = _mm256_unpacklo_epi32(v[2], v[3]), b23 = _mm256_unpackhi_epi32(v[2], v[3]);
      const V256 t[4] = {_mm256_unpacklo_epi64(a01, a23), _mm256_unpackhi_epi64(a01, a23),
                         _mm256_unpacklo_epi64(b01, b23), _mm256_unpackhi_epi64(b01, b23)};
      uint8_t* dst = codes + c * kChunkBytes + static_cast<size_t>(i) * 4;
      for (int q = 0; q < 4; ++q) {
        if (rows_here == 4) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + q * kPanelRows * 4), _mm256_castsi256_si128(t[q]));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (q + 4) * kPanelRows * 4),
                           _mm256_extracti128_si256(t[q], 1));
        } else {
          alignas(32) uint8_t tmp[32];
          _mm256_store_si256(reinterpret_cast<V256*>(tmp), t[q]);
          std::memcpy(dst + q * kPanelRows * 4, tmp, static_cast<size_t>(rows_here) * 4);
          std::memcpy(dst + (q + 4) * kPanelRows * 4, tmp + 16, static_cast<size_t>(rows_here) * 4);
        }
      }
    }
  }
  for (int i = 0; i < n_rows; ++i) {
    const uint8_t* row = w + static_cast<size_t>(i) * w_row_bytes;
    for (size_t u = 0; u < n_units; ++u) {
      const size_t g = u * Src::kGroups * kPanelRows + static_cast<size_t>(i);
      Src::Scales(row, u, scale + g, Src::kMin ? min + g : nullptr);
    }
  }
}

// Rows [r0, r1) x all n_tokens through panels. pa: the activations per group (yoff, d, sums / ms as Src needs).
template <class Src>
void MatMulPanels(const uint8_t* w_rows, size_t w_row_bytes, size_t n_units, const PanelActs& pa, int64_t n_tokens,
                  float* y, int64_t y_stride, bool accumulate, int64_t r0, int64_t r1) {
  thread_local std::vector<uint8_t> codes;
  thread_local std::vector<float> scales;
  const size_t n_groups = n_units * Src::kGroups;
  codes.resize(n_units * Src::kChunks * 32 * kPanelRows);
  scales.resize(2 * n_groups * kPanelRows);
  const Panel p{codes.data(), scales.data(), scales.data() + n_groups * kPanelRows};
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
    PackPanel<Src>(w_rows + static_cast<size_t>(r) * w_row_bytes, w_row_bytes, n_rows, n_units, codes.data(),
                   scales.data(), scales.data() + n_groups * kPanelRows);
    PanelTokens<Src::kQ, Src::kOff, Src::kMin, Src::kSigned>(p, pa, static_cast<size_t>(n_tokens), y + r,
                                                             static_cast<size_t>(y_stride), n_rows, accumulate);
  }
}

// A 32-value-block type: the activation blocks are the groups.
template <class Dec>
void MatMulB32Panels(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, int64_t n_tokens, float* y,
                     int64_t y_stride, bool accumulate, int64_t r0, int64_t r1) {
  thread_local std::vector<uint32_t> yoff;
  yoff.resize(a.nb);
  for (size_t b = 0; b < a.nb; ++b) yoff[b] = static_cast<uint32_t>(b * a.block_bytes + a.qs_offset);
  const PanelActs pa{a.rows, a.row_bytes, a.nb, yoff.data(), a.d, a.sums, PanelSrcB32<Dec>::kNegO, a.s};
  MatMulPanels<PanelSrcB32<Dec>>(w_rows, w_row_bytes, a.nb, pa, n_tokens, y, y_stride, accumulate, r0, r1);
}

// q4_K / q6_K against Q8_K activations: groups of 32 / 16 values; per (token, group) d_a and sum(y) come from
// QuantActs' group arrays (PrepareQuantActs).
template <class Src>
void MatMulKPanels(const uint8_t* w_rows, size_t w_row_bytes, const Acts& a, const float* gd, const int32_t* gsums,
                   const float* gms, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate, int64_t r0,
                   int64_t r1) {
  constexpr size_t kGroupValues = kQK_K / Src::kGroups;
  const size_t n_groups = a.nb * Src::kGroups;
  thread_local std::vector<uint32_t> yoff;
  yoff.resize(n_groups);
  for (size_t g = 0; g < n_groups; ++g) {
    yoff[g] =
        static_cast<uint32_t>((g / Src::kGroups) * a.block_bytes + a.qs_offset + (g % Src::kGroups) * kGroupValues);
  }
  const PanelActs pa{a.rows, a.row_bytes, n_groups, yoff.data(), gd, gsums, Src::kNegO, gms};
  MatMulPanels<Src>(w_rows, w_row_bytes, a.nb, pa, n_tokens, y, y_stride, accumulate, r0, r1);
}

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // PLM_QUANT_DOT_U8
#endif  // include guard toggle
