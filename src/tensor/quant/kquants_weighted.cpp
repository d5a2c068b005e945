// Importance-weighted k-quant quantizers (ggml-quants.c quantize_row_q{2,3,4,5,6}_K_impl, what quantize_qX_K runs
// per row when llama-quantize has an importance matrix). They replace the reference quantizers' scale searches:
// each value is weighted by its matrix entry times sqrt(sigma2 + x^2), the sub-block scales come from
// make_qkx3_quants / make_qx_quants under those weights, and the scales themselves are quantized by a weighted
// search (make_qp_quants / make_qx_quants over the sub-blocks' weight sums) instead of against their maximum.
// Storing the scales and values is shared with the reference quantizers (quant_math.h, block assembly).
#include <algorithm>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

using detail::ImportanceWeights;
using detail::MakeQpQuants;
using detail::SumInOrder;
using detail::SumOfSquares;

namespace {

// Q2_K, Q4_K, Q5_K: per sub-block of `size` values, the importance weights, their sum sw[j] and
// make_qkx3_quants' scale and min (values 0..nmax in L).
void SearchScalesMins(const float* x, const float* qw, float sigma2, int size, int nmax, uint8_t* L, float* scales,
                      float* mins, float* sw) {
  float weight[32];
  uint8_t Laux[32];
  for (int j = 0; j < kQK_K / size; ++j) {
    ImportanceWeights(x + size * j, qw + size * j, size, sigma2, weight);
    sw[j] = SumInOrder(weight, size);
    scales[j] = detail::MakeQkx3Quants(size, nmax, x + size * j, weight, L + size * j, &mins[j], Laux);
  }
}

// Q4_K / Q5_K: sigma2 = 2 * mean(x^2); the 8 scales and mins quantized to 6 bits by make_qp_quants weighted by
// the sub-blocks' weight sums. Q5_K caps them at 63; Q4_K does not (the level of a negative scale, stored modulo
// 256, spills into the neighbouring bits, as in ggml). Then the values requantized with the stored scales.
template <typename Block>
void QuantizeScalesMinsWeighted(const float* x, const float* qw, int nmax, bool cap_at_63, Block* y, uint8_t* L) {
  constexpr int kSub = kQK_K / 32;
  float scales[kSub];
  float mins[kSub];
  float sw[kSub];
  uint8_t ls[kSub];
  uint8_t lm[kSub];
  const float sigma2 = 2 * SumOfSquares(x, kQK_K) / kQK_K;
  SearchScalesMins(x, qw, sigma2, 32, nmax, L, scales, mins, sw);
  const float d_block = MakeQpQuants(kSub, 63, scales, ls, sw);
  const float m_block = MakeQpQuants(kSub, 63, mins, lm, sw);
  if (cap_at_63) {
    for (int j = 0; j < kSub; ++j) {
      ls[j] = std::min<uint8_t>(63, ls[j]);
      lm[j] = std::min<uint8_t>(63, lm[j]);
    }
  }
  detail::PackScalesMinsK4(ls, lm, y->scales);
  y->d = F32ToF16(d_block);
  y->dmin = F32ToF16(m_block);
  detail::RequantizeScalesMinsK4(x, nmax, y->d, y->dmin, y->scales, L);
}

// Runs quantize_block(x, qw, block) on each super-block of the row with its slice of the importance matrix row.
template <typename Block, typename QuantizeBlock>
void ForEachSuperBlock(const float* src, void* dst, int64_t n, const float* weights, QuantizeBlock quantize_block) {
  auto* y = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) quantize_block(src + i * kQK_K, weights + i * kQK_K, &y[i]);
}

// ggml quantize_row_q2_K_impl: sigma2 = mean(x^2) (not doubled, unlike the other k-quants), make_qkx3_quants per
// sub-block of 16, then scales and mins to 4 bits by make_qp_quants.
void QuantizeQ2KBlock(const float* x, const float* qw, BlockQ2_K* y) {
  constexpr int kSub = kQK_K / 16;
  uint8_t L[kQK_K];
  float scales[kSub];
  float mins[kSub];
  float sw[kSub];
  uint8_t ls[kSub];
  uint8_t lm[kSub];
  SearchScalesMins(x, qw, SumOfSquares(x, kQK_K) / kQK_K, 16, 3, L, scales, mins, sw);
  y->d = F32ToF16(MakeQpQuants(kSub, 15, scales, ls, sw));
  y->dmin = F32ToF16(MakeQpQuants(kSub, 15, mins, lm, sw));
  for (int j = 0; j < kSub; ++j) y->scales[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
  detail::FinishQ2K(x, L, y);
}

// ggml quantize_row_q3_K_impl: make_qx_quants(16, 4) per sub-block under the widened weights, then the 16 signed
// scales to 6 bits by make_qx_quants(16, 32) weighted by the sub-blocks' weight sums.
void QuantizeQ3KBlock(const float* x, const float* qw, BlockQ3_K* y) {
  constexpr int kSub = kQK_K / 16;
  int8_t L[kQK_K];
  float scales[kSub];
  float sw[kSub];
  float weight[16];
  const float sigma2 = 2 * SumOfSquares(x, kQK_K) / kQK_K;
  for (int j = 0; j < kSub; ++j) {
    ImportanceWeights(x + 16 * j, qw + 16 * j, 16, sigma2, weight);
    sw[j] = SumInOrder(weight, 16);
    scales[j] = detail::MakeQxQuants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
  }
  int8_t ls[kSub];
  const float d_block = detail::MakeQxQuants(kSub, 32, scales, ls, 1, sw);
  detail::PackQ3Scales(ls, y->scales);
  y->d = F32ToF16(d_block);
  detail::FinishQ3K(x, L, y);
}

}  // namespace

template <>
void QuantizeRowWeighted<DType::kQ2_K>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachSuperBlock<BlockQ2_K>(src, dst, n, weights, QuantizeQ2KBlock);
}

template <>
void QuantizeRowWeighted<DType::kQ3_K>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachSuperBlock<BlockQ3_K>(src, dst, n, weights, QuantizeQ3KBlock);
}

// ggml quantize_row_q4_K_impl.
template <>
void QuantizeRowWeighted<DType::kQ4_K>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachSuperBlock<BlockQ4_K>(src, dst, n, weights, [](const float* x, const float* qw, BlockQ4_K* y) {
    uint8_t L[kQK_K];
    QuantizeScalesMinsWeighted(x, qw, 15, false, y, L);
    detail::PackQ4K(L, y->qs);
  });
}

// ggml quantize_row_q5_K_impl.
template <>
void QuantizeRowWeighted<DType::kQ5_K>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachSuperBlock<BlockQ5_K>(src, dst, n, weights, [](const float* x, const float* qw, BlockQ5_K* y) {
    uint8_t L[kQK_K];
    QuantizeScalesMinsWeighted(x, qw, 31, true, y, L);
    detail::PackQ5K(L, y->qs, y->qh);
  });
}

// ggml quantize_row_q6_K_impl: the reference algorithm with the matrix entries (not widened by sigma2) as the
// weights of each sub-block's scale search.
template <>
void QuantizeRowWeighted<DType::kQ6_K>(const float* src, void* dst, int64_t n, const float* weights) {
  detail::QuantizeQ6K(src, dst, n, weights);
}

}  // namespace pocketlm::quant
