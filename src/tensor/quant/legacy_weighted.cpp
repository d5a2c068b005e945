// Importance-weighted quantizers of the legacy 32-value block types (ggml-quants.c quantize_row_q4_0_impl,
// q4_1_impl, q5_0_impl, q5_1_impl: what quantize_q4_0 etc. run per row when llama-quantize has an importance
// matrix). Instead of the reference's scale from the block's extreme values, each block's scale (and min) comes
// from a search under weights qw * sqrt(sigma2 + x^2), sigma2 being the mean of x^2 over the whole row.
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

namespace {

constexpr int kBlock = 32;  // every legacy type's block size

// Runs quantize_block(xb, weight, block) on each block of the row with its widened importance weights.
template <typename Block, typename QuantizeBlock>
void ForEachWeightedBlock(const float* src, void* dst, int64_t n, const float* qw, QuantizeBlock quantize_block) {
  auto* y = static_cast<Block*>(dst);
  const float sigma2 = detail::SumOfSquares(src, n) / static_cast<float>(n);
  float weight[kBlock];
  for (int64_t ib = 0; ib < n / kBlock; ++ib) {
    detail::ImportanceWeights(src + kBlock * ib, qw + kBlock * ib, kBlock, sigma2, weight);
    quantize_block(src + kBlock * ib, weight, &y[ib]);
  }
}

// Values 0..15: value j in the low nibble of byte j, value j + 16 in its high nibble.
template <typename Level>
void PackNibbles(const Level* L, uint8_t* qs) {
  for (int j = 0; j < kBlock / 2; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + kBlock / 2] << 4));
}

// Values 0..31: low nibbles as PackNibbles, bit 4 of value j in bit j of qh.
template <typename Level>
void PackFiveBits(const Level* L, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    const auto xi0 = static_cast<uint8_t>(L[j]);
    const auto xi1 = static_cast<uint8_t>(L[j + kBlock / 2]);
    qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
    qh |= ((xi0 & 0x10u) >> 4) << j;
    qh |= ((xi1 & 0x10u) >> 4) << (j + kBlock / 2);
  }
  std::memcpy(qh_bytes, &qh, sizeof(qh));
}

// Q4_1 / Q5_1: make_qkx3_quants' scale and min (stored negated: x = d * q + m).
template <typename Block>
void ScaleAndMin(const float* xb, const float* weight, int nmax, Block* y, uint8_t* L) {
  uint8_t Laux[kBlock];
  float min;
  const float d = detail::MakeQkx3Quants(kBlock, nmax, xb, weight, L, &min, Laux);
  y->d = F32ToF16(d);
  y->m = F32ToF16(-min);
}

}  // namespace

// Symmetric: make_qx_quants(32, 8) under the weights.
template <>
void QuantizeRowWeighted<DType::kQ4_0>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachWeightedBlock<BlockQ4_0>(src, dst, n, weights, [](const float* xb, const float* weight, BlockQ4_0* y) {
    int8_t L[kBlock];
    y->d = F32ToF16(detail::MakeQxQuants(kBlock, 8, xb, L, 1, weight));
    PackNibbles(L, y->qs);
  });
}

// Asymmetric: make_qkx3_quants(32, 15).
template <>
void QuantizeRowWeighted<DType::kQ4_1>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachWeightedBlock<BlockQ4_1>(src, dst, n, weights, [](const float* xb, const float* weight, BlockQ4_1* y) {
    uint8_t L[kBlock];
    ScaleAndMin(xb, weight, 15, y, L);
    PackNibbles(L, y->qs);
  });
}

// Symmetric: make_qx_quants(32, 16).
template <>
void QuantizeRowWeighted<DType::kQ5_0>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachWeightedBlock<BlockQ5_0>(src, dst, n, weights, [](const float* xb, const float* weight, BlockQ5_0* y) {
    int8_t L[kBlock];
    y->d = F32ToF16(detail::MakeQxQuants(kBlock, 16, xb, L, 1, weight));
    PackFiveBits(L, y->qs, y->qh);
  });
}

// Asymmetric: make_qkx3_quants(32, 31).
template <>
void QuantizeRowWeighted<DType::kQ5_1>(const float* src, void* dst, int64_t n, const float* weights) {
  ForEachWeightedBlock<BlockQ5_1>(src, dst, n, weights, [](const float* xb, const float* weight, BlockQ5_1* y) {
    uint8_t L[kBlock];
    ScaleAndMin(xb, weight, 31, y, L);
    PackFiveBits(L, y->qs, y->qh);
  });
}

}  // namespace pocketlm::quant
