// Decode tile for AVX-512 (included by quant_dot.cpp per target, after quant_gemm_panel-inl.h): one token times
// kR weight rows of a 32-value-block type, two blocks per 512-bit vector.
//
// Why: decoding must stream the weights at the memory bandwidth, and TileB32 (256-bit, one block per step) spent ~8
// instructions per 18-byte q4_0 block and row: at 2 cores that instruction rate, not the memory, capped decode near
// half the read bandwidth. Here blocks b and b + 1 of a row share one vector: their codes in lanes 0-31 / 32-63,
// one vpdpbusd with the two activation blocks, one conversion and one FMA with (d_w d_a of block b) x 8 lanes |
// (block b + 1) x 8 lanes, the same per-block terms ggml_vec_dot_q4_0_q8_0 adds.
#if defined(POCKETLM_OPS_QUANT_DOT_DECODE512_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_QUANT_DOT_DECODE512_INL_H_
#undef POCKETLM_OPS_QUANT_DOT_DECODE512_INL_H_
#else
#define POCKETLM_OPS_QUANT_DOT_DECODE512_INL_H_
#endif

#if PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace qdec {

// Codes of blocks b (lanes 0-31) and b + 1 (lanes 32-63) as PanelTile multiplies them (see kPanelSigned).
template <class Dec>
HWY_INLINE __m512i Codes2(const uint8_t* blk) {
  if constexpr (std::is_same_v<Dec, B32Q4_0> || std::is_same_v<Dec, B32Q4_1>) {
    // Both blocks' 16 nibble bytes, each in two 128-bit lanes; low nibbles in the first lane of each pair.
    const size_t qs = std::is_same_v<Dec, B32Q4_0> ? offsetof(BlockQ4_0, qs) : offsetof(BlockQ4_1, qs);
    const __m512i raw =
        _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + qs))),
                                    0xFF00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + Dec::kBytes + qs)));
    return _mm512_and_si512(_mm512_srlv_epi64(raw, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)), _mm512_set1_epi8(0x0F));
  } else {
    const auto one = [](const uint8_t* b) { return kPanelSigned<Dec> ? Dec::Weights(b) : B32Codes<Dec>(b); };
    return _mm512_inserti64x4(_mm512_castsi256_si512(one(blk)), one(blk + Dec::kBytes), 1);
  }
}

// out[r] = dot(weight row r, activation row t0) for r < kR; row r at w + r * w_row_bytes. scratch: kR * (nb + 8)
// floats.
template <class Dec, int kR>
HWY_NOINLINE void TileB32Decode(const uint8_t* HWY_RESTRICT w, size_t w_row_bytes, const Acts& a, size_t t0,
                                float* HWY_RESTRICT scratch, float* out) {
  constexpr bool kOff = PanelSrcB32<Dec>::kOff, kSigned = kPanelSigned<Dec>;
  const size_t nb = a.nb, stride = nb + 8;
  // scratch[r * stride + b] = d_w(r, b) * d_a(b): row-major here, so a pair of blocks is one 64-bit load.
  for (int r = 0; r < kR; ++r) B32RowScales<Dec, 1>(w + r * w_row_bytes, a, t0, 1, scratch + r * stride);
  __m512 acc[kR];
  float e[kR];
  for (int r = 0; r < kR; ++r) acc[r] = _mm512_setzero_ps(), e[r] = 0.0f;
  const uint8_t* y = a.rows + t0 * a.row_bytes + a.qs_offset;
  const __m512i pair_idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  size_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    // Fetch the rows two tiles ahead while this tile computes (see TileB32).
    const uint8_t* next = w + 2 * kR * w_row_bytes + b * (kR * Dec::kBytes);
    for (size_t off = 0; off < 2 * kR * Dec::kBytes; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
    }
    const __m512i y2 = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const V256*>(y + b * a.block_bytes))),
        _mm256_loadu_si256(reinterpret_cast<const V256*>(y + (b + 1) * a.block_bytes)), 1);
    __m512i init = _mm512_setzero_si512();
    if constexpr (kOff) {
      init = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(1, a.Off(t0, b)), 0x100, a.Off(t0, b + 1));
    }
    for (int r = 0; r < kR; ++r) {
      const __m512i w2 = Codes2<Dec>(w + r * w_row_bytes + b * Dec::kBytes);
      __m512i isum;
      if constexpr (kSigned) {
        isum = PDotS(init, PAbs8(w2), w2, y2);
      } else {
        isum = PDotU(init, w2, y2);
      }
      double pair;
      std::memcpy(&pair, scratch + r * stride + b, 8);
      const __m512 sc = _mm512_permutexvar_ps(pair_idx, _mm512_castpd_ps(_mm512_set1_pd(pair)));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, acc[r]);
    }
    if constexpr (Dec::kMin) {
      for (int r = 0; r < kR; ++r) {
        const uint8_t* blk = w + r * w_row_bytes + b * Dec::kBytes;
        e[r] += Dec::M(blk) * a.s[t0 * nb + b] + Dec::M(blk + Dec::kBytes) * a.s[t0 * nb + b + 1];
      }
    }
  }
  for (int r = 0; r < kR; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + e[r];
  if (b < nb) {  // odd block count: the last block through the 256-bit tile's arithmetic
    const V256 yv = _mm256_loadu_si256(reinterpret_cast<const V256*>(y + b * a.block_bytes));
    V256 init = _mm256_setzero_si256();
    if constexpr (kOff) init = _mm256_zextsi128_si256(_mm_cvtsi32_si128(a.Off(t0, b)));
    for (int r = 0; r < kR; ++r) {
      const uint8_t* blk = w + r * w_row_bytes + b * Dec::kBytes;
      const V256 isum = B32Dot<Dec>(init, B32Codes<Dec>(blk), yv);
      out[r] += HSum256(_mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(scratch[r * stride + b])));
      if constexpr (Dec::kMin) out[r] += Dec::M(blk) * a.s[t0 * nb + b];
    }
  }
}

}  // namespace qdec
}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // PLM_QUANT_DOT_U8 && HWY_TARGET != HWY_AVX2
#endif  // include guard toggle
