// Quantizers of IQ2_XXS, IQ2_XS and IQ2_S (layouts in blocks.h): ggml-quants.c's quantize_row_iq2_xxs_impl,
// quantize_row_iq2_xs_impl and quantize_row_iq2_s_impl (llama.cpp c392e50), the path llama-quantize takes with an
// importance matrix; it refuses these types without one, and so does pocketlm (quant_traits.cpp: weighted only).
// The search is lattice_codebook.h's (QuantizeLatticeRow, with each format's constants); here is each format's
// packing: indices, signs and the sub-block scales coded in 4 bits relative to the largest, d = largest / 31.
#include "tensor/quant/blocks.h"
#include "tensor/quant/lattice_codebook.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {

namespace {

using detail::LatticeGrid;
using detail::SuperBlockResult;

void StoreLE16(uint16_t v, uint8_t* p) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

// IQ2_XXS: per sub-block two little-endian u32: the 4 group indices (bytes), then 4 x 7 sign bits | scale << 28.
template <>
void QuantizeRowWeighted<DType::kIQ2_XXS>(const float* src, void* dst, int64_t n, const float* weights) {
  auto pack = [](const SuperBlockResult& r, BlockIQ2_XXS* y) {
    if (r.max_scale == 0) return;
    const float id = detail::EncodeSuperScale(r.max_scale, 31, 1.f, &y->d);
    auto* qs = reinterpret_cast<uint8_t*>(y->qs);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      uint32_t words[2] = {0, static_cast<uint32_t>(detail::SubBlockScaleCode(id, r.scales[ib], 15)) << 28};
      for (int k = 0; k < 4 && !r.zero[ib]; ++k) {
        words[0] |= static_cast<uint32_t>(r.index[ib][k]) << 8 * k;
        words[1] |= static_cast<uint32_t>(r.signs[ib][k]) << 7 * k;
      }
      for (int b = 0; b < 8; ++b) qs[8 * ib + b] = static_cast<uint8_t>(words[b / 4] >> 8 * (b % 4));
    }
  };
  detail::QuantizeLatticeRow(LatticeGrid::kIQ2XXS, src, static_cast<BlockIQ2_XXS*>(dst), n, weights, pack);
}

// IQ2_XS: per group of 8 a little-endian u16, 9-bit index | 7 sign bits << 9; 4-bit scales two per byte.
template <>
void QuantizeRowWeighted<DType::kIQ2_XS>(const float* src, void* dst, int64_t n, const float* weights) {
  auto pack = [](const SuperBlockResult& r, BlockIQ2_XS* y) {
    if (r.max_scale == 0) return;
    const float id = detail::EncodeSuperScale(r.max_scale, 31, 1.f, &y->d);
    detail::PackScaleNibbles(id, r.scales, kQK_K / 16, y->scales);
    auto* qs = reinterpret_cast<uint8_t*>(y->qs);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      for (int k = 0; k < 2 && !r.zero[ib]; ++k) {
        StoreLE16(static_cast<uint16_t>(r.index[ib][k] | r.signs[ib][k] << 9), qs + 2 * (2 * ib + k));
      }
    }
  };
  detail::QuantizeLatticeRow(LatticeGrid::kIQ2XS, src, static_cast<BlockIQ2_XS*>(dst), n, weights, pack);
}

// IQ2_S: group i8's 10-bit index in qs[i8] and bits 2(i8 % 4) of qh[i8 / 4]; its 8 sign bits in qs[32 + i8]
// (written, as in ggml, even when every scale is 0); super-scale stored x 0.9875.
template <>
void QuantizeRowWeighted<DType::kIQ2_S>(const float* src, void* dst, int64_t n, const float* weights) {
  auto pack = [](const SuperBlockResult& r, BlockIQ2_S* y) {
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      for (int k = 0; k < 2 && !r.zero[ib]; ++k) {
        const int i8 = 2 * ib + k;
        y->qs[i8] = static_cast<uint8_t>(r.index[ib][k] & 255);
        y->qh[i8 / 4] = static_cast<uint8_t>(y->qh[i8 / 4] | (r.index[ib][k] >> 8) << 2 * (i8 % 4));
        y->qs[kQK_K / 8 + i8] = r.signs[ib][k];
      }
    }
    if (r.max_scale == 0) return;
    const float id = detail::EncodeSuperScale(r.max_scale, 31, 0.9875f, &y->d);
    detail::PackScaleNibbles(id, r.scales, kQK_K / 16, y->scales);
  };
  detail::QuantizeLatticeRow(LatticeGrid::kIQ2S, src, static_cast<BlockIQ2_S*>(dst), n, weights, pack);
}

}  // namespace pocketlm::quant
