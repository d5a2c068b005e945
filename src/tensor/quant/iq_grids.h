// Codebooks of the lattice i-quants (IQ1_S/IQ1_M, IQ2_XXS/IQ2_XS/IQ2_S, IQ3_XXS/IQ3_S), transcribed value for value
// from ggml (ggml/src/ggml-common.h, llama.cpp c392e50, Feb 2025). They are data of the file format: a block stores
// indices into them, so a single wrong entry decodes wrong weights. tests/quant/iq_grids_test.cpp pins every table by
// checksum and by the level sets below.
//
// A grid entry packs 8 (IQ1/IQ2) or 4 (IQ3) small values, value j in byte j of the little-endian integer:
//   kIQ2XXSGrid, kIQ2XSGrid, kIQ2SGrid  bytes in {8, 25, 43}: unsigned magnitudes; signs are stored separately
//   kIQ3XXSGrid                         bytes in {4, 12, 20, 28, 36, 44, 52, 62}
//   kIQ3SGrid                           bytes in {1, 3, ..., 15} (odd)
//   kIQ1SGrid                           bytes 0xff, 0x00, 0x01: the signed values -1, 0, 1
#pragma once

#include <cstdint>

namespace pocketlm::quant {

extern const uint64_t kIQ2XXSGrid[256];  // ggml iq2xxs_grid
extern const uint64_t kIQ2XSGrid[512];   // ggml iq2xs_grid
extern const uint64_t kIQ2SGrid[1024];   // ggml iq2s_grid
extern const uint32_t kIQ3XXSGrid[256];  // ggml iq3xxs_grid
extern const uint32_t kIQ3SGrid[512];    // ggml iq3s_grid
extern const uint64_t kIQ1SGrid[2048];   // ggml iq1s_grid (NGRID_IQ1S), shared by IQ1_S and IQ1_M

// ggml ksigns_iq2xs: 7 stored sign bits s expand to 8, the 8th chosen so that the number of negative values is even
// (entry s = s | 0x80 when s has an odd number of set bits). Bit j set: value j of the group of 8 is negated
// (ggml tests it with kmask_iq2xs[j] = 1 << j).
extern const uint8_t kIQ2XSSigns[128];

// Offset added to every IQ1_S / IQ1_M grid value before scaling, negated by the block's sign bit (ggml IQ1S_DELTA,
// IQ1M_DELTA; both 0.125 and the IQ1_M decoder uses IQ1S_DELTA).
inline constexpr float kIQ1Delta = 0.125f;

// Byte j of a grid entry (j < 8 or j < 4), as ggml reads it through a uint8_t / int8_t pointer on a little-endian
// host.
inline uint8_t GridByte(uint64_t entry, int j) {
  return static_cast<uint8_t>(entry >> (8 * j));
}

}  // namespace pocketlm::quant
