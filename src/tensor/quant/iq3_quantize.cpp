// Quantizers of IQ3_XXS and IQ3_S (layouts in blocks.h): ggml-quants.c's quantize_row_iq3_xxs_impl(256, ...) and
// quantize_row_iq3_s_impl(32, ...) (llama.cpp c392e50). Unlike the IQ2/IQ1 types they also run without an
// importance matrix (weights x^2): that is their reference quantizer, QuantizeRow (ggml's quantize_row_*_ref). The
// search is lattice_codebook.h's (QuantizeLatticeRow: 8 sub-blocks of 32 values in groups of 4, levels 0..7,
// candidate inverse scales stepping by 0.2; each format's constants are there); here is each format's packing.
#include <cstring>

#include "tensor/quant/blocks.h"
#include "tensor/quant/lattice_codebook.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {

using detail::LatticeGrid;
using detail::SuperBlockResult;

// IQ3_XXS: 8 index bytes per sub-block, then per sub-block a little-endian u32 of 4 x 7 sign bits | scale << 28;
// super-scale stored x 1.0125.
template <>
void QuantizeRowWeighted<DType::kIQ3_XXS>(const float* src, void* dst, int64_t n, const float* weights) {
  auto pack = [](const SuperBlockResult& r, BlockIQ3_XXS* y) {
    if (r.max_scale == 0) return;
    const float id = detail::EncodeSuperScale(r.max_scale, 31, 1.0125f, &y->d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      uint32_t word = static_cast<uint32_t>(detail::SubBlockScaleCode(id, r.scales[ib], 15)) << 28;
      for (int k = 0; k < 8 && !r.zero[ib]; ++k) {
        y->qs[8 * ib + k] = static_cast<uint8_t>(r.index[ib][k]);
        if (k < 4) word |= static_cast<uint32_t>(r.signs[ib][k]) << 7 * k;
      }
      for (int b = 0; b < 4; ++b) y->qs[kQK_K / 4 + 4 * ib + b] = static_cast<uint8_t>(word >> 8 * b);
    }
  };
  detail::QuantizeLatticeRow(LatticeGrid::kIQ3XXS, src, static_cast<BlockIQ3_XXS*>(dst), n, weights, pack);
}

template <>
void QuantizeRow<DType::kIQ3_XXS>(const float* src, void* dst, int64_t n) {
  QuantizeRowWeighted<DType::kIQ3_XXS>(src, dst, n, nullptr);
}

// IQ3_S: half k of sub-block ib has its index's low 8 bits in qs and bit 8 in bit k of qh[ib]; 4 sign bytes per
// sub-block; super-scale stored x 1.033. ggml advances its qs and signs write positions only past non-zero
// sub-blocks (qh and the scales go by sub-block number): after an all-zero sub-block the following ones land one
// slot early and the last slots stay zero. pocketlm writes the same bytes.
template <>
void QuantizeRowWeighted<DType::kIQ3_S>(const float* src, void* dst, int64_t n, const float* weights) {
  auto pack = [](const SuperBlockResult& r, BlockIQ3_S* y) {
    int slot = 0;  // ggml's advancing qs / signs position, in sub-blocks
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      if (r.zero[ib]) continue;
      for (int k = 0; k < 8; ++k) {
        y->qs[8 * slot + k] = static_cast<uint8_t>(r.index[ib][k] & 255);
        y->qh[ib] = static_cast<uint8_t>(y->qh[ib] | (r.index[ib][k] >> 8) << k);
      }
      std::memcpy(y->signs + 4 * slot, r.signs[ib], 4);
      ++slot;
    }
    if (r.max_scale == 0) return;
    const float id = detail::EncodeSuperScale(r.max_scale, 31, 1.033f, &y->d);
    detail::PackScaleNibbles(id, r.scales, kQK_K / 32, y->scales);
  };
  detail::QuantizeLatticeRow(LatticeGrid::kIQ3S, src, static_cast<BlockIQ3_S*>(dst), n, weights, pack);
}

template <>
void QuantizeRow<DType::kIQ3_S>(const float* src, void* dst, int64_t n) {
  QuantizeRowWeighted<DType::kIQ3_S>(src, dst, n, nullptr);
}

}  // namespace pocketlm::quant
