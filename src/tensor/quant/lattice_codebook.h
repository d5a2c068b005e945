// The search structures and shared steps of ggml's lattice i-quant quantizers (ggml-quants.c, llama.cpp c392e50):
// one home for what quantize_row_iq2_{xxs,xs,s}_impl, quantize_row_iq3_{xxs,s}_impl and quantize_row_iq1_{s,m}_impl
// have in common (IQ1's split search and its shifted-level neighbour search are in iq1_quantize.cpp). Internal to
// plm_tensor_quant.
//
// A lattice codebook is a grid of iq_grids.h read as small levels: entry j holds `group` levels l (8 of 2 bits for
// IQ2/IQ1, 4 of 3 bits for IQ3), stored as the odd values 2l + 1 the searches compare against (ggml's kgrid_q2xs /
// kgrid_q3xs). A key packs the levels of one group, level k at bits k*bits: the map turns an on-grid key into its
// entry and an off-grid key into its neighbour list, the entries at the `nwant` smallest distinct squared distances
// ordered by (distance, index) (iq2xs_init_impl / iq3xs_init_impl). Every float step keeps ggml's operation order:
// the quantizers must write the bytes llama.cpp writes.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace pocketlm::quant::detail {

enum class LatticeGrid {
  kIQ2XXS,  // 256 entries of 8 x 2 bits, 2 distances of neighbours
  kIQ2XS,   // 512, 2
  kIQ2S,    // 1024, 1
  kIQ1S,    // 2048, 3 (IQ1_S and IQ1_M)
  kIQ3XXS,  // 256 entries of 4 x 3 bits, 2
  kIQ3S,    // 512, 3
};

class LatticeCodebook {
 public:
  explicit LatticeCodebook(LatticeGrid grid);

  int group() const { return group_; }
  int bits() const { return bits_; }
  // The odd values 2l + 1 of entry `index` (group() of them).
  const int8_t* Entry(int index) const { return &entries_[static_cast<size_t>(index) * group_]; }
  // The key of levels L[0..group()), each in [0, 2^bits).
  uint16_t KeyOfLevels(const int8_t* L) const;
  // The entry of an on-grid key, or -1.
  int Find(uint16_t key) const { return map_[key] >= 0 ? map_[key] : -1; }
  // The neighbours of an off-grid key, nearest first (empty for an on-grid key).
  std::span<const uint16_t> Neighbours(uint16_t key) const;
  // Writes the levels (value - 1) / 2 of entry `index` to L[0..group()).
  void Levels(int index, int8_t* L) const;

  // ggml iq2_find_best_neighbour / iq3_find_best_neighbour: among the neighbours of the off-grid key, the entry
  // minimizing sum weight * (scale * value - xval)^2 (first on ties); its levels go to L. Returns the entry.
  int BestNeighbour(uint16_t key, const float* xval, const float* weight, float scale, int8_t* L) const;

 private:
  int group_;
  int bits_;
  std::vector<int8_t> entries_;
  std::vector<int32_t> map_;  // key -> entry >= 0, -(offset + 1) of [count, neighbours...] in neighbours_, or unlisted
  std::vector<uint16_t> neighbours_;
};

// The codebook of `grid`, built on first use (thread-safe; IQ1S, the largest, takes ~20 ms in a release build).
const LatticeCodebook& GetLatticeCodebook(LatticeGrid grid);

// ggml's MAX(a, b) = a > b ? a : b: with a NaN b the result is b, as in ggml (std::max would return a).
inline float MaxOf(float a, float b) {
  return a > b ? a : b;
}

// How IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S search a super-block (ggml quantize_row_iq*_impl; each format's
// constants are in lattice_codebook.cpp's kFormats, keyed by its grid):
//  - weights qw * sqrt(sigma2 + x^2) with sigma2 = (1 or 2) * sum x^2 / 256 (x^2 without an importance matrix);
//  - signs folded out in groups of 8 (xval = |x|); the 7-bit sign formats (IQ2_XXS, IQ2_XS, IQ3_XXS) keep an even
//    number of negative values per group by flipping the value of least weight * x^2 instead (its xval < 0);
//  - a sub-block whose largest xval is below the format's epsilon is all-zero: scale 0, nothing written;
//  - candidate inverse scales (2 kmax_q - 1 + is * step) / max for is in [-nsteps, nsteps] (IQ2_XXS: / (kmax_q
//    * make_qp_quants' scale)): each group rounded to levels nearest_int(0.5 (id x - 1)) in [0, kmax_q), an
//    off-grid group replaced by its best neighbour (weights sqrt(weight)); the largest sumqx^2 / sumq2 wins;
//  - re-quantization of all or only the off-grid groups with the winning scale, then a negative scale made positive
//    by flipping the signs.

// State carried across the sub-blocks of a row. ggml declares these arrays once per call, so a sub-block whose
// search never improves on its start (all weights zero) keeps the previous sub-block's levels and on-grid flags;
// the row state reproduces that within a row (ggml's first values are whatever its stack held; here zeros).
struct SubBlockState {
  int8_t L[32] = {};
  bool on_grid[8] = {};
};

// The search results of one 256-value super-block, per sub-block ib (8 of 32 values or 16 of 16).
struct SuperBlockResult {
  float scales[16];       // sub-block scales, >= 0 (0 for an all-zero sub-block)
  bool zero[16];          // all-zero sub-block: ggml writes none of its indices or signs
  uint16_t index[16][8];  // grid entry of each group (of 8 values for IQ2, 4 for IQ3)
  uint8_t signs[16][4];   // sign bits of each 8 values (bit i: value i negative; 7 bits in the 7-bit formats)
  float max_scale;        // the largest scale (ggml's MAX order: NaN propagates)
};

// The search of super-block xbl[0..256) of the format whose grid is `grid` (not kIQ1S) with importance qw[0..256)
// (nullptr: x^2 weights, IQ3's reference path).
void SearchSuperBlock(LatticeGrid grid, const float* xbl, const float* qw, SubBlockState* state, SuperBlockResult* out);

// A row of n values (a multiple of 256) as blocks y[0..n/256) of an IQ2/IQ3 format: per super-block the search,
// then pack(result, block) on the zeroed block. weights: the row's importance matrix values or nullptr.
template <typename Block, typename Pack>
void QuantizeLatticeRow(LatticeGrid grid, const float* src, Block* y, int64_t n, const float* weights, Pack pack) {
  SubBlockState state;
  SuperBlockResult r;
  for (int64_t ibl = 0; ibl < n / 256; ++ibl) {
    SearchSuperBlock(grid, src + 256 * ibl, weights != nullptr ? weights + 256 * ibl : nullptr, &state, &r);
    std::memset(&y[ibl], 0, sizeof(Block));
    pack(r, &y[ibl]);
  }
}

// The super-block scale of the IQ2/IQ3/IQ1 formats: d = max_scale / max_code, stored as f16(d * fudge) in *d16
// (ggml's per-type fudge factors). Returns id = 1 / d for the sub-block codes.
float EncodeSuperScale(float max_scale, int max_code, float fudge, uint16_t* d16);

// A 4-bit (IQ2/IQ3) or 3-bit (IQ1) sub-block scale code relative to the super-block's id = 1 / d:
// clamp(nearest_int(0.5 (id * scale - 1)), 0, max_code).
int SubBlockScaleCode(float id, float scale, int max_code);
// 4-bit codes of `count` sub-block scales, two per byte, even sub-block in the low nibble (IQ2_XS, IQ2_S, IQ3_S).
void PackScaleNibbles(float id, const float* scales, int count, uint8_t* out);

}  // namespace pocketlm::quant::detail
