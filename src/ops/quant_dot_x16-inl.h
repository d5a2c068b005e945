// Kernels for q4_0 / q5_0 / q8_0 / q4_K / q6_K rows interleaved 16 at a time (tensor/quant/interleave.h), AVX-512
// (included by quant_dot.cpp per target, after quant_dot_decode512-inl.h).
//
// Per token and block b, for 16 rows at once: slot k (one 512-bit load) holds nibble bytes 4k..4k+3 of the 16 rows'
// blocks, lane i = row i. Its low nibbles are values 4k..4k+3 and its high nibbles values 16+4k..16+4k+3, so one
// vpdpbusd against activation bytes 4k..4k+3 (broadcast) and one against bytes 16+4k.. add 4 products to each row's
// int32 lane. With VNNI the high nibbles are used in place (x & 0xF0 = 16 q, products < 2^15 are no concern for
// vpdpbusd's 32-bit sums) and the sum is shifted right by 4 once per block; without VNNI they are shifted down first
// (vpmaddubsw's int16 pairs would overflow on 16 q). Then per block one conversion and one FMA by d_w (16 f16) x
// d_a scale all 16 rows: isum = sum(q y) - 8 sum(y), the integer ggml_vec_dot_q4_0_q8_0 forms per block. q5_0: the
// 5th bits come as one 64-bit byte mask per slot and nibble half (masked byte add of 16). q8_0 (AVX512-VNNI only):
// 8 slots of code bytes value + 128, isum = sum((v + 128) y) - 128 sum(y).
#if defined(POCKETLM_OPS_QUANT_DOT_X16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_QUANT_DOT_X16_INL_H_
#undef POCKETLM_OPS_QUANT_DOT_X16_INL_H_
#else
#define POCKETLM_OPS_QUANT_DOT_X16_INL_H_
#endif

#if PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "hwy/highway.h"
#include "tensor/quant/interleave.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace qdec {

// How far ahead of the block being read the stream is prefetched (into L2). One core keeps only so many lines in
// flight on its own; q4_0 decode on the Qwen2-0.5B-shaped model (2 threads, medians of 5 interleaved runs):
// no prefetch 57 tok/s, 16 blocks (4.6 KB) ahead 78, 32 blocks (9.2 KB) 85, 64 blocks 77 (noise ~ +-10%).
constexpr size_t kX16PrefetchBytes = 9216;
// And a second, short prefetch into L1 of what the next few blocks read (the stream otherwise misses L1 on every
// line, and the loads' L2 latency showed as the kernel's hottest instructions): q4_0 on cache-resident rows
// (bench/micro/quant_dot_bench) 34 -> 37.5 GB/s; decode, alternating A/B medians of 7: q4_0 96.5 -> 102.4 tok/s,
// q4_k_m 86.4 -> 88.5. The k-quant kernels prefetch their next block (2.3-3.4 KB) this way: slower on
// cache-resident rows (q4_K 29.6 -> 26.8 GB/s: the extra instructions), faster where it counts, from DRAM (q4_k_m
// decode 86.2 -> 90.4 tok/s, twice).
constexpr size_t kX16L1PrefetchBytes = 1024;

// Bytes per block of a unit (16 blocks) and where its code slots start (tensor/quant/interleave.h).
template <DType kT>
constexpr size_t kX16Block = kT == DType::kQ8_0 ? 16 * 34 : (kT == DType::kQ5_0 ? 16 * 22 : 16 * 18);
template <DType kT>
constexpr size_t kX16Slots = kT == DType::kQ5_0 ? 96 : 32;

HWY_INLINE __m512i Bcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Codes of slot k's low (h = 0: values 4k..4k+3) or high (h = 1: 16+4k..) nibbles of a q4_0 / q5_0 unit block, as
// unsigned bytes (q5_0: plus 16 where hmask[h][k] has the 5th bit).
template <DType kT>
HWY_INLINE __m512i X16Nibbles(const uint8_t* blk, int k, int h) {
  const __m512i lo_mask = _mm512_set1_epi8(0x0F);
  const __m512i x = _mm512_loadu_si512(blk + kX16Slots<kT> + 64 * k);
  __m512i c = _mm512_and_si512(h == 0 ? x : _mm512_srli_epi16(x, 4), lo_mask);
  if constexpr (kT == DType::kQ5_0) {
    uint64_t m;
    std::memcpy(&m, blk + 32 + 8 * (4 * h + k), 8);
    c = _mm512_mask_add_epi8(c, _cvtu64_mask64(m), c, _mm512_set1_epi8(16));
  }
  return c;
}

// The integer block sums of 16 rows (lane i = row i) for block blk of a unit against activation block yb, whose
// quants sum to ysum: sum((v + o) y) - o sum(y) with the offset o = 8 (q4_0), 16 (q5_0), 128 (q8_0, whose codes
// are v + 128 for vpdpbusd's unsigned side: VNNI only, as vpmaddubsw would saturate).
template <DType kT>
HWY_INLINE __m512i X16BlockSums(const uint8_t* HWY_RESTRICT blk, const uint8_t* HWY_RESTRICT yb, int32_t ysum) {
  if constexpr (kT == DType::kQ8_0 && !kVnni) {
    return _mm512_setzero_si512();  // never called: InterleavedIsFasterImpl says no
  } else if constexpr (kT == DType::kQ8_0) {
    __m512i s0 = _mm512_set1_epi32(-128 * ysum), s1 = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
      s0 = PDotU(s0, _mm512_loadu_si512(blk + 32 + 64 * k), Bcast32(yb + 4 * k));
      s1 = PDotU(s1, _mm512_loadu_si512(blk + 96 + 64 * k), Bcast32(yb + 4 * k + 4));
    }
    return _mm512_add_epi32(s0, s1);
  } else if constexpr (kT == DType::kQ4_0 && kVnni) {
    // High nibbles in place (x & 0xF0 = 16 v): one and instead of shift + and; the sum is shifted once per block.
    const __m512i lo_mask = _mm512_set1_epi8(0x0F);
    __m512i lo = _mm512_set1_epi32(-8 * ysum), hi = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      const __m512i x = _mm512_loadu_si512(blk + 32 + 64 * k);
      lo = PDotU(lo, _mm512_and_si512(x, lo_mask), Bcast32(yb + 4 * k));
      hi = PDotU(hi, _mm512_andnot_si512(lo_mask, x), Bcast32(yb + 16 + 4 * k));
    }
    return _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
  } else {
    constexpr int32_t kO = kT == DType::kQ5_0 ? 16 : 8;
    __m512i lo = _mm512_set1_epi32(-kO * ysum), hi = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      lo = PDotU(lo, X16Nibbles<kT>(blk, k, 0), Bcast32(yb + 4 * k));
      hi = PDotU(hi, X16Nibbles<kT>(blk, k, 1), Bcast32(yb + 16 + 4 * k));
    }
    return _mm512_add_epi32(lo, hi);
  }
}

// out[i] = dot(row i of the unit at w, activation row t), i < 16.
template <DType kT>
HWY_NOINLINE void X16Decode(const uint8_t* HWY_RESTRICT w, const Acts& a, size_t t, float* HWY_RESTRICT out) {
  constexpr size_t kB = kX16Block<kT>;
  const size_t nb = a.nb;
  const uint8_t* y = a.rows + t * a.row_bytes + a.qs_offset;
  const float* d_a = a.d + t * nb;
  const int32_t* sums = a.sums + t * nb;
  __m512 acc = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * kB;
    for (size_t c = 0; c < kB; c += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(blk + kX16PrefetchBytes + c), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(blk + kX16L1PrefetchBytes + c), _MM_HINT_T0);
    }
    const __m512i isum = X16BlockSums<kT>(blk, y + b * a.block_bytes, sums[b]);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_set1_ps(d_a[b])), acc);
  }
  _mm512_storeu_ps(out, acc);
}

// Prefill: the panel PanelTile multiplies (quant_gemm_panel-inl.h: codes[b][q][32 rows][4], scale[b][32 rows]) for
// the 32 rows of units 0 and 1 at w (n_units = 1: the second 16 rows are zero). q4_0 / q5_0: word q of rows
// 16v..16v+15 is slot q % 4 of unit v, low nibbles for q < 4, high ones for q >= 4 (q5_0: with the 5th bits);
// q8_0 (VNNI): slot q as it is (the panel's codes are v + 128 there too).
template <DType kT>
void PackPanelX16(const uint8_t* w, size_t unit_bytes, int n_units, size_t nb, uint8_t* codes, float* scale) {
  static_assert(kPanelRows == 2 * quant::kInterleaveRows, "a panel is two units");
  constexpr size_t kB = kX16Block<kT>;
  for (size_t b = 0; b < nb; ++b) {
    for (int v = 0; v < 2; ++v) {
      uint8_t* dst = codes + b * (8 * kPanelRows * 4) + v * 64;
      float* sc = scale + b * kPanelRows + v * 16;
      if (v >= n_units) {
        for (int q = 0; q < 8; ++q) _mm512_storeu_si512(dst + q * (kPanelRows * 4), _mm512_setzero_si512());
        _mm512_storeu_ps(sc, _mm512_setzero_ps());
        continue;
      }
      const uint8_t* blk = w + v * unit_bytes + b * kB;
      for (int q = 0; q < 8; ++q) {
        const __m512i c =
            kT == DType::kQ8_0 ? _mm512_loadu_si512(blk + 32 + 64 * q) : X16Nibbles<kT>(blk, q % 4, q / 4);
        _mm512_storeu_si512(dst + q * (kPanelRows * 4), c);
      }
      _mm512_storeu_ps(sc, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk))));
    }
  }
}

// Rows [r0, r1) (whole units, r0 % 16 == 0, r1 % 16 == 0) x all n_tokens through PanelTile.
template <DType kT>
void MatMulX16Panels(const uint8_t* w, size_t w_row_bytes, const Acts& a, int64_t n_tokens, float* y, int64_t y_stride,
                     bool accumulate, int64_t r0, int64_t r1) {
  using Src = PanelSrcB32<
      std::conditional_t<kT == DType::kQ8_0, B32Q8_0, std::conditional_t<kT == DType::kQ5_0, B32Q5_0, B32Q4_0>>>;
  static_assert(!Src::kMin, "codes with an offset, no min");
  if constexpr (kT == DType::kQ8_0 && !kVnni) return;  // never called: InterleavedIsFasterImpl says no
  thread_local std::vector<uint8_t> codes;
  thread_local std::vector<float> scales;
  thread_local std::vector<uint32_t> yoff;
  codes.resize(a.nb * 32 * kPanelRows);
  scales.resize(a.nb * kPanelRows);
  yoff.resize(a.nb);
  for (size_t b = 0; b < a.nb; ++b) yoff[b] = static_cast<uint32_t>(b * a.block_bytes + a.qs_offset);
  const PanelActs pa{a.rows, a.row_bytes, a.nb, yoff.data(), a.d, a.sums, Src::kNegO, nullptr};
  const Panel p{codes.data(), scales.data(), nullptr};
  const size_t unit_bytes = quant::kInterleaveRows * w_row_bytes;
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
    PackPanelX16<kT>(w + static_cast<size_t>(r) * w_row_bytes, unit_bytes, n_rows / quant::kInterleaveRows, a.nb,
                     codes.data(), scales.data());
    PanelTokens<Src::kQ, Src::kOff, false, Src::kSigned>(p, pa, static_cast<size_t>(n_tokens), y + r,
                                                         static_cast<size_t>(y_stride), n_rows, accumulate);
  }
}

// ---- q6_K ------------------------------------------------------------------------------------------------------
// Value 128h + 32k + l (h < 2, k < 4, l < 32) of a q6_K super-block is (low or high nibble (k >= 2) of
// ql[64h + 32 (k & 1) + l]) | (bits 2k..2k+1 of qh[32h + l]) << 4, minus 32, scaled by sc[8h + 2k + l / 16]
// (dequantize_row_q6_K). In a unit, quartet l = 4q..4q+3 of 16 rows is ql slot 16h + 8 (k & 1) + q and qh slot
// 8h + q (tensor/quant/interleave.h).
constexpr size_t kX16Q6KBlock = 16 * 210, kX16Q6KQl = 288, kX16Q6KQh = 288 + 32 * 64;

// The codes (0..63) of quartet (h, k, q) for 16 rows, from the ql slots qla (k & 1 == 0) / qlb and the qh slot.
HWY_INLINE __m512i X16Q6KCodes(__m512i qla, __m512i qlb, __m512i qh, int k) {
  const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i ql = (k & 1) ? qlb : qla;
  const __m512i nib = k >= 2 ? _mm512_srli_epi16(ql, 4) : ql;
  __m512i hb;  // bits 2k..2k+1 of each qh byte moved to bits 4..5 (masked: no bits from the neighbour byte)
  switch (k) {
    case 0: hb = _mm512_slli_epi16(qh, 4); break;
    case 1: hb = _mm512_slli_epi16(qh, 2); break;
    case 2: hb = qh; break;
    default: hb = _mm512_srli_epi16(qh, 2); break;
  }
  // (nib & 0x0F) | (hb & 0x30): ternary logic 0xEC is (a & c) | b.
  return _mm512_ternarylogic_epi32(nib, _mm512_and_si512(hb, m30), m0f, 0xEC);
}

// Per super-block: sum over its 16 groups of sc_g (sum_g(q y) - 32 sum_g(y)) for 16 rows, in int32 as
// ggml_vec_dot_q6_K_q8_K sums it (|each term| < 2^24, 16 terms). yq: the Q8_K block's quants, bsums its group sums.
HWY_INLINE __m512i X16Q6KSums(const uint8_t* HWY_RESTRICT blk, const uint8_t* HWY_RESTRICT yq, const int16_t* bsums) {
  __m512i total = _mm512_setzero_si512();
  for (int h = 0; h < 2; ++h) {
    __m512i g[8];  // group 8h + i
    for (int i = 0; i < 8; ++i) g[i] = _mm512_set1_epi32(-32 * bsums[8 * h + i]);
    for (int q = 0; q < 8; ++q) {
      const __m512i qla = _mm512_loadu_si512(blk + kX16Q6KQl + 64 * (16 * h + q));
      const __m512i qlb = _mm512_loadu_si512(blk + kX16Q6KQl + 64 * (16 * h + 8 + q));
      const __m512i qh = _mm512_loadu_si512(blk + kX16Q6KQh + 64 * (8 * h + q));
      for (int k = 0; k < 4; ++k) {
        const int i = 2 * k + q / 4;
        g[i] = PDotU(g[i], X16Q6KCodes(qla, qlb, qh, k), Bcast32(yq + 128 * h + 32 * k + 4 * q));
      }
    }
    for (int i = 0; i < 8; ++i) {
      const __m512i sc =
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * (8 * h + i))));
      total = _mm512_add_epi32(total, _mm512_mullo_epi32(g[i], sc));
    }
  }
  return total;
}

// Prefill: PanelSrcQ6_K's panel (groups of 16 values, kQ = 4 words, codes 0..63 with offset 32, scale d sc) for
// the 32 rows of units 0 and 1 at w (n_units = 1: the second 16 rows are zero).
inline void PackPanelX16Q6K(const uint8_t* w, size_t unit_bytes, int n_units, size_t nb, uint8_t* codes, float* scale) {
  static_assert(kPanelRows == 2 * quant::kInterleaveRows, "a panel is two units");
  constexpr size_t kGroupBytes = 4 * kPanelRows * 4;
  for (size_t b = 0; b < nb; ++b) {
    for (int v = 0; v < 2; ++v) {
      if (v >= n_units) {
        for (int g = 0; g < 16; ++g) {
          for (int qq = 0; qq < 4; ++qq) {
            _mm512_storeu_si512(codes + (b * 16 + g) * kGroupBytes + qq * (kPanelRows * 4) + v * 64,
                                _mm512_setzero_si512());
          }
          _mm512_storeu_ps(scale + (b * 16 + g) * kPanelRows + v * 16, _mm512_setzero_ps());
        }
        continue;
      }
      const uint8_t* blk = w + v * unit_bytes + b * kX16Q6KBlock;
      for (int h = 0; h < 2; ++h) {
        for (int q = 0; q < 8; ++q) {
          const __m512i qla = _mm512_loadu_si512(blk + kX16Q6KQl + 64 * (16 * h + q));
          const __m512i qlb = _mm512_loadu_si512(blk + kX16Q6KQl + 64 * (16 * h + 8 + q));
          const __m512i qh = _mm512_loadu_si512(blk + kX16Q6KQh + 64 * (8 * h + q));
          for (int k = 0; k < 4; ++k) {
            const size_t g = b * 16 + static_cast<size_t>(8 * h + 2 * k + q / 4);
            _mm512_storeu_si512(codes + g * kGroupBytes + (q % 4) * (kPanelRows * 4) + v * 64,
                                X16Q6KCodes(qla, qlb, qh, k));
          }
        }
      }
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      for (int g = 0; g < 16; ++g) {
        const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * g)));
        _mm512_storeu_ps(scale + (b * 16 + g) * kPanelRows + v * 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
      }
    }
  }
}

// Rows [r0, r1) (whole units) x all n_tokens (Q8_K activations with QuantActs' group arrays gd, gsums).
inline void MatMulX16PanelsQ6K(const uint8_t* w, size_t w_row_bytes, const Acts& a, const float* gd,
                               const int32_t* gsums, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                               int64_t r0, int64_t r1) {
  const size_t n_groups = a.nb * 16;
  thread_local std::vector<uint8_t> codes;
  thread_local std::vector<float> scales;
  thread_local std::vector<uint32_t> yoff;
  codes.resize(n_groups * 16 * kPanelRows);
  scales.resize(n_groups * kPanelRows);
  yoff.resize(n_groups);
  for (size_t g = 0; g < n_groups; ++g) {
    yoff[g] = static_cast<uint32_t>((g / 16) * a.block_bytes + a.qs_offset + (g % 16) * 16);
  }
  const PanelActs pa{a.rows, a.row_bytes, n_groups, yoff.data(), gd, gsums, -32, nullptr};
  const Panel p{codes.data(), scales.data(), nullptr};
  const size_t unit_bytes = quant::kInterleaveRows * w_row_bytes;
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
    PackPanelX16Q6K(w + static_cast<size_t>(r) * w_row_bytes, unit_bytes, n_rows / quant::kInterleaveRows, a.nb,
                    codes.data(), scales.data());
    PanelTokens<4, true, false, false>(p, pa, static_cast<size_t>(n_tokens), y + r, static_cast<size_t>(y_stride),
                                       n_rows, accumulate);
  }
}

// ---- q4_K ------------------------------------------------------------------------------------------------------
// Value 64i + l of a q4_K super-block (i < 4, l < 64) is the low (l < 32) or high nibble of qs[32i + l % 32], in
// group g = 2i + l / 32, x = d sc_g q - dmin m_g (dequantize_row_q4_K). In a unit, qs bytes 32i + 4s.. of 16 rows are
// slot 8i + s and the 12 packed scale bytes are three slots (tensor/quant/interleave.h).
constexpr size_t kX16Q4KBlock = 16 * 144, kX16Q4KSc = 64, kX16Q4KQs = 256;

// The 6-bit scales and mins (get_scale_min_k4): byte g % 4 of each row's lane of sc[g / 4] / m[g / 4].
struct X16Q4KScales {
  __m512i sc[2], m[2];
};
HWY_INLINE X16Q4KScales X16Q4KUnpack(const uint8_t* blk) {
  const __m512i s0 = _mm512_loadu_si512(blk + kX16Q4KSc), s1 = _mm512_loadu_si512(blk + kX16Q4KSc + 64);
  const __m512i s2 = _mm512_loadu_si512(blk + kX16Q4KSc + 128);
  const __m512i m3f = _mm512_set1_epi8(0x3F), m30 = _mm512_set1_epi8(0x30), m0f = _mm512_set1_epi8(0x0F);
  X16Q4KScales r;
  r.sc[0] = _mm512_and_si512(s0, m3f);  // j < 4: q[j] & 63
  r.m[0] = _mm512_and_si512(s1, m3f);   //        q[j + 4] & 63
  // j >= 4: (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4 and (q[j + 4] >> 4) | (q[j] >> 6) << 4; 0xEC: (a & c) | b.
  r.sc[1] = _mm512_ternarylogic_epi32(s2, _mm512_and_si512(_mm512_srli_epi16(s0, 2), m30), m0f, 0xEC);
  r.m[1] =
      _mm512_ternarylogic_epi32(_mm512_srli_epi16(s2, 4), _mm512_and_si512(_mm512_srli_epi16(s1, 2), m30), m0f, 0xEC);
  return r;
}
HWY_INLINE __m512i X16Byte(__m512i v, int j) {
  return _mm512_and_si512(_mm512_srli_epi32(v, 8 * j), _mm512_set1_epi32(0xFF));
}

// The integer sums of 16 rows' groups of 32 (lo: group 2i, hi: group 2i + 1) against activation quants yq.
HWY_INLINE void X16Q4KPair(const uint8_t* HWY_RESTRICT blk, const uint8_t* HWY_RESTRICT yq, int i, __m512i* lo,
                           __m512i* hi) {
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  __m512i l = _mm512_setzero_si512(), h = _mm512_setzero_si512();
  for (int s = 0; s < 8; ++s) {
    const __m512i x = _mm512_loadu_si512(blk + kX16Q4KQs + 64 * (8 * i + s));
    l = PDotU(l, _mm512_and_si512(x, m0f), Bcast32(yq + 64 * i + 4 * s));
    if constexpr (kVnni) {
      h = PDotU(h, _mm512_andnot_si512(m0f, x), Bcast32(yq + 64 * i + 32 + 4 * s));  // 16 q: shifted below
    } else {
      h = PDotU(h, _mm512_and_si512(_mm512_srli_epi16(x, 4), m0f), Bcast32(yq + 64 * i + 32 + 4 * s));
    }
  }
  *lo = l;
  *hi = kVnni ? _mm512_srai_epi32(h, 4) : h;
}

// Per super-block: sumi = sum_g sc_g isum_g and summ = sum_g m_g sum_g(y) for 16 rows, the two integer sums
// ggml_vec_dot_q4_K_q8_K forms (the block's value is d_a (d sumi - dmin summ)).
HWY_INLINE void X16Q4KSums(const uint8_t* HWY_RESTRICT blk, const uint8_t* HWY_RESTRICT yq, const int16_t* bsums,
                           __m512i* sumi, __m512i* summ) {
  const X16Q4KScales sm = X16Q4KUnpack(blk);
  *sumi = _mm512_setzero_si512();
  *summ = _mm512_setzero_si512();
  for (int i = 0; i < 4; ++i) {
    __m512i isum[2];
    X16Q4KPair(blk, yq, i, &isum[0], &isum[1]);
    for (int h = 0; h < 2; ++h) {
      const int g = 2 * i + h;
      *sumi = _mm512_add_epi32(*sumi, _mm512_mullo_epi32(isum[h], X16Byte(sm.sc[g / 4], g % 4)));
      *summ = _mm512_add_epi32(
          *summ, _mm512_mullo_epi32(X16Byte(sm.m[g / 4], g % 4), _mm512_set1_epi32(bsums[2 * g] + bsums[2 * g + 1])));
    }
  }
}

// out[i] = dot(row i of the q4_K / q6_K unit at w, activation row t (Q8_K)), i < 16.
template <DType kT>
HWY_NOINLINE void X16DecodeK(const uint8_t* HWY_RESTRICT w, const Acts& a, size_t t, float* HWY_RESTRICT out) {
  constexpr size_t kBlock = kT == DType::kQ6_K ? kX16Q6KBlock : kX16Q4KBlock;
  const size_t nb = a.nb;
  __m512 acc = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * kBlock;
    for (size_t c = 0; c < kBlock; c += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(blk + kX16PrefetchBytes + c), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(blk + kBlock + c), _MM_HINT_T0);  // the next block, into L1
    }
    const uint8_t* yb = a.rows + t * a.row_bytes + b * a.block_bytes;
    int16_t bsums[16];
    std::memcpy(bsums, yb + offsetof(BlockQ8_K, bsums), sizeof(bsums));
    const __m512 da = _mm512_set1_ps(a.d[t * nb + b]);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    if constexpr (kT == DType::kQ6_K) {
      const __m512i isum = X16Q6KSums(blk, yb + offsetof(BlockQ8_K, qs), bsums);
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, da), acc);
    } else {
      __m512i sumi, summ;
      X16Q4KSums(blk, yb + offsetof(BlockQ8_K, qs), bsums, &sumi, &summ);
      const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, da), acc);
      acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dmin, da), acc);
    }
  }
  _mm512_storeu_ps(out, acc);
}

// Prefill: PanelSrcQ4_K's panel (groups of 32, kQ = 8 words, codes 0..15, scale d sc_g, min -dmin m_g) for the 32
// rows of units 0 and 1 at w (n_units = 1: the second 16 rows are zero).
inline void PackPanelX16Q4K(const uint8_t* w, size_t unit_bytes, int n_units, size_t nb, uint8_t* codes, float* scale,
                            float* min) {
  static_assert(kPanelRows == 2 * quant::kInterleaveRows, "a panel is two units");
  constexpr size_t kGroupBytes = 8 * kPanelRows * 4;
  const __m512i m0f = _mm512_set1_epi8(0x0F);
  for (size_t b = 0; b < nb; ++b) {
    for (int v = 0; v < 2; ++v) {
      const size_t g0 = b * 8;
      if (v >= n_units) {
        for (size_t g = g0; g < g0 + 8; ++g) {
          for (int q = 0; q < 8; ++q) {
            _mm512_storeu_si512(codes + g * kGroupBytes + q * (kPanelRows * 4) + v * 64, _mm512_setzero_si512());
          }
          _mm512_storeu_ps(scale + g * kPanelRows + v * 16, _mm512_setzero_ps());
          _mm512_storeu_ps(min + g * kPanelRows + v * 16, _mm512_setzero_ps());
        }
        continue;
      }
      const uint8_t* blk = w + v * unit_bytes + b * kX16Q4KBlock;
      for (int i = 0; i < 4; ++i) {
        for (int q = 0; q < 8; ++q) {
          const __m512i x = _mm512_loadu_si512(blk + kX16Q4KQs + 64 * (8 * i + q));
          _mm512_storeu_si512(codes + (g0 + 2 * i) * kGroupBytes + q * (kPanelRows * 4) + v * 64,
                              _mm512_and_si512(x, m0f));
          _mm512_storeu_si512(codes + (g0 + 2 * i + 1) * kGroupBytes + q * (kPanelRows * 4) + v * 64,
                              _mm512_and_si512(_mm512_srli_epi16(x, 4), m0f));
        }
      }
      const X16Q4KScales sm = X16Q4KUnpack(blk);
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
      for (int g = 0; g < 8; ++g) {
        const __m512 sc = _mm512_cvtepi32_ps(X16Byte(sm.sc[g / 4], g % 4));
        const __m512 m = _mm512_cvtepi32_ps(X16Byte(sm.m[g / 4], g % 4));
        _mm512_storeu_ps(scale + (g0 + g) * kPanelRows + v * 16, _mm512_mul_ps(d, sc));
        _mm512_storeu_ps(min + (g0 + g) * kPanelRows + v * 16,
                         _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), dmin), m));
      }
    }
  }
}

// Rows [r0, r1) (whole units) x all n_tokens (Q8_K activations with QuantActs' group arrays gd, gms).
inline void MatMulX16PanelsQ4K(const uint8_t* w, size_t w_row_bytes, const Acts& a, const float* gd, const float* gms,
                               int64_t n_tokens, float* y, int64_t y_stride, bool accumulate, int64_t r0, int64_t r1) {
  const size_t n_groups = a.nb * 8;
  thread_local std::vector<uint8_t> codes;
  thread_local std::vector<float> scales;
  thread_local std::vector<uint32_t> yoff;
  codes.resize(n_groups * 32 * kPanelRows);
  scales.resize(2 * n_groups * kPanelRows);
  yoff.resize(n_groups);
  for (size_t g = 0; g < n_groups; ++g) {
    yoff[g] = static_cast<uint32_t>((g / 8) * a.block_bytes + a.qs_offset + (g % 8) * 32);
  }
  const PanelActs pa{a.rows, a.row_bytes, n_groups, yoff.data(), gd, nullptr, 0, gms};
  const Panel p{codes.data(), scales.data(), scales.data() + n_groups * kPanelRows};
  const size_t unit_bytes = quant::kInterleaveRows * w_row_bytes;
  for (int64_t r = r0; r < r1; r += kPanelRows) {
    const int n_rows = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
    PackPanelX16Q4K(w + static_cast<size_t>(r) * w_row_bytes, unit_bytes, n_rows / quant::kInterleaveRows, a.nb,
                    codes.data(), scales.data(), scales.data() + n_groups * kPanelRows);
    PanelTokens<8, false, true, false>(p, pa, static_cast<size_t>(n_tokens), y + r, static_cast<size_t>(y_stride),
                                       n_rows, accumulate);
  }
}

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
#endif  // include guard toggle
