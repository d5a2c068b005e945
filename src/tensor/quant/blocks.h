// GGUF quantized block layouts, byte for byte as ggml defines them (ggml/src/ggml-common.h). Every struct is a
// POD of uint8_t/uint16_t/int8_t fields in ggml's field order with no padding, so a pointer into a mapped GGUF
// tensor can be read as an array of these blocks. f16 fields are raw IEEE binary16 bits (see tensor/half.h).
//
// Naming: "32-blocks" (Q4_0 .. Q8_1, IQ4_NL) hold 32 values with one scale; "super-blocks" (k-quants, IQ4_XS, the
// lattice i-quants) hold QK_K = 256 values split into 8 or 16 sub-blocks whose scales are themselves quantized
// against the super-block scale `d` (and `dmin` for the formats with a per-sub-block minimum).
#pragma once

#include <cstdint>

namespace pocketlm::quant {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK4_NL = 32;
inline constexpr int kQK_K = 256;       // super-block size of the k-quants and IQ4_XS
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// ---- 32-value blocks -------------------------------------------------------------------------------------------

// x[j] = d * (q[j] - 8). Byte j holds value j in its low nibble and value j + 16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;              // f16 scale
  uint8_t qs[kQK4_0 / 2];  // nibbles
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block is 2 + 16 bytes");

// x[j] = d * q[j] + m; nibbles as in Q4_0.
struct BlockQ4_1 {
  uint16_t d;              // f16 scale
  uint16_t m;              // f16 min (the value of q = 0)
  uint8_t qs[kQK4_1 / 2];  // nibbles
};
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block is 4 + 16 bytes");

// x[j] = d * (q[j] - 16), q 5 bits: low 4 bits as in Q4_0, bit 4 of value j is bit j of the little-endian u32 qh.
struct BlockQ5_0 {
  uint16_t d;              // f16 scale
  uint8_t qh[4];           // 5th bits, value j -> bit j
  uint8_t qs[kQK5_0 / 2];  // low nibbles
};
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block is 2 + 4 + 16 bytes");

// x[j] = d * q[j] + m; 5-bit q laid out as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;  // f16 scale
  uint16_t m;  // f16 min
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block is 4 + 4 + 16 bytes");

// x[j] = d * qs[j].
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block is 2 + 32 bytes");

// Activation format for Q4_1/Q5_1 dot products: Q8_0 plus s = d * sum(qs), which carries the min term.
struct BlockQ8_1 {
  uint16_t d;  // f16 scale
  uint16_t s;  // f16 d * sum(qs)
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36, "q8_1 block is 4 + 32 bytes");

// x[j] = d * kIQ4NLValues[q[j]]: 4-bit indices into a non-uniform table, nibbles as in Q4_0.
struct BlockIQ4_NL {
  uint16_t d;  // f16 scale
  uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "iq4_nl block is 2 + 16 bytes");

// ---- 256-value super-blocks --------------------------------------------------------------------------------------

// 16 sub-blocks of 16: x = d * sc * q - dmin * m, q 2 bits, sc and m 4 bits (scales[i] = sc | m << 4).
// qs: for each half (128 values) 32 bytes; byte l holds values l, l+32, l+64, l+96 of the half in bits 0-1,
// 2-3, 4-5, 6-7.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // 4-bit scale | 4-bit min per sub-block
  uint8_t qs[kQK_K / 4];       // 2-bit quants
  uint16_t d;                  // f16 super-scale of the scales
  uint16_t dmin;               // f16 super-scale of the mins
};
static_assert(sizeof(BlockQ2_K) == 84, "q2_K block is 16 + 64 + 4 bytes");

// 16 sub-blocks of 16: x = d * (sc - 32) * (q - 4), q 3 bits = 2 low bits (qs, packed as in Q2_K) + high bit
// (hmask: bit k of byte m is value m + 32*k, set means "no -4"). sc are 6-bit, packed into 12 bytes: low nibbles
// of sub-blocks 0-7 in bytes 0-7 (low half) and 8-15 (high half), top 2 bits in bytes 8-11.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];  // high bits
  uint8_t qs[kQK_K / 4];     // low 2 bits
  uint8_t scales[12];        // 6-bit scales
  uint16_t d;                // f16 super-scale
};
static_assert(sizeof(BlockQ3_K) == 110, "q3_K block is 32 + 64 + 12 + 2 bytes");

// 8 sub-blocks of 32: x = d * sc * q - dmin * m, q 4 bits, sc and m 6 bits packed in 12 bytes (see
// GetScaleMinK4). qs: 4 chunks of 64 values, 32 bytes each; low nibbles = first 32 values, high = next 32.
struct BlockQ4_K {
  uint16_t d;     // f16 super-scale of the scales
  uint16_t dmin;  // f16 super-scale of the mins
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "q4_K block is 4 + 12 + 128 bytes");

// As Q4_K with a 5th bit: bit 2c (low-nibble values) and 2c+1 (high-nibble values) of qh[l] belong to chunk c.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "q5_K block is 4 + 12 + 32 + 128 bytes");

// 16 sub-blocks of 16: x = d * sc * (q - 32), q 6 bits, sc signed 8-bit. Per half (128 values): ql 64 bytes
// (byte l: value l low nibble | value l+64 high nibble; byte l+32: values l+32 | l+96), qh 32 bytes (byte l:
// top 2 bits of values l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // 8-bit scales
  uint16_t d;                 // f16 super-scale
};
static_assert(sizeof(BlockQ6_K) == 210, "q6_K block is 128 + 64 + 16 + 2 bytes");

// Activation format of the k-quant dot products: f32 scale, 8-bit quants, sums of each group of 16.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "q8_K block is 4 + 256 + 32 bytes");

// 8 sub-blocks of 32: x = d * (ls - 32) * kIQ4NLValues[q], ls 6 bits: low nibble in scales_l (sub-block 2i in
// the low nibble of byte i, 2i+1 in the high), top 2 bits at bits 2ib..2ib+1 of scales_h. qs as 8 IQ4_NL blocks.
struct BlockIQ4_XS {
  uint16_t d;  // f16 super-scale
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136, "iq4_xs block is 2 + 2 + 4 + 128 bytes");

// ---- lattice i-quants -------------------------------------------------------------------------------------------
// 256-value super-blocks of 8 sub-blocks of 32 values, coded in groups of 8 (IQ3: two halves of 4) as indices into
// the codebooks of iq_grids.h, signs and sub-block scales beside them (ggml-quants.c, dequantize_row_iq*). Read-only
// in pocketlm. Multi-byte fields are little-endian, as everywhere in GGUF.

// x = d * (0.5 + s) / 4 * grid[g][j] * sign. Sub-block ib is qs[4ib .. 4ib+3] read as two little-endian u32 words:
// word 0 holds the 4 group indices (byte l -> kIQ2XXSGrid), word 1 holds 4 x 7 sign bits (group l at bit 7l,
// expanded by kIQ2XSSigns) and the 4-bit scale s in bits 28-31.
struct BlockIQ2_XXS {
  uint16_t d;              // f16 super-scale
  uint16_t qs[kQK_K / 8];  // 2 x u32 per sub-block
};
static_assert(sizeof(BlockIQ2_XXS) == 66, "iq2_xxs block is 2 + 64 bytes");

// x = d * (0.5 + s) / 4 * grid[g][j] * sign. Group l of sub-block ib: qs[4ib + l] = 9-bit index into kIQ2XSGrid
// | 7 sign bits << 9; s = low nibble of scales[ib] for groups 0-1, high nibble for groups 2-3.
struct BlockIQ2_XS {
  uint16_t d;                  // f16 super-scale
  uint16_t qs[kQK_K / 8];      // index | signs << 9
  uint8_t scales[kQK_K / 32];  // two 4-bit scales per sub-block
};
static_assert(sizeof(BlockIQ2_XS) == 74, "iq2_xs block is 2 + 64 + 8 bytes");

// x = d * (0.5 + s) / 4 * grid[g][j] * sign, 10-bit indices into kIQ2SGrid: group l of sub-block ib has the low
// 8 bits in qs[4ib + l] and bits 8-9 in bits 2l..2l+1 of qh[ib]; its 8 sign bits are qs[32 + 4ib + l] (plain, not
// expanded). Scales as in IQ2_XS.
struct BlockIQ2_S {
  uint16_t d;                  // f16 super-scale
  uint8_t qs[kQK_K / 4];       // 32 index bytes, then 32 sign bytes
  uint8_t qh[kQK_K / 32];      // index bits 8-9
  uint8_t scales[kQK_K / 32];  // two 4-bit scales per sub-block
};
static_assert(sizeof(BlockIQ2_S) == 82, "iq2_s block is 2 + 64 + 8 + 8 bytes");

// x = d * (0.5 + s) / 2 * grid[h][j] * sign, groups of 8 made of two halves of 4 (kIQ3XXSGrid): sub-block ib has
// its 8 half indices in qs[8ib .. 8ib+7] and a little-endian u32 at qs[64 + 4ib] with 4 x 7 sign bits (as IQ2_XXS)
// and s in bits 28-31.
struct BlockIQ3_XXS {
  uint16_t d;                 // f16 super-scale
  uint8_t qs[3 * kQK_K / 8];  // 64 index bytes, then 8 x u32 scales-and-signs
};
static_assert(sizeof(BlockIQ3_XXS) == 98, "iq3_xxs block is 2 + 96 bytes");

// x = d * (1 + 2s) * grid[h][j] * sign, 9-bit indices into kIQ3SGrid: half k (0..7) of sub-block ib has the low
// 8 bits in qs[8ib + k] and bit 8 in bit k of qh[ib]; signs[4ib + l] holds the 8 plain sign bits of group l; s is
// the low nibble of scales[ib / 2] for even ib, the high nibble for odd ib.
struct BlockIQ3_S {
  uint16_t d;                  // f16 super-scale
  uint8_t qs[kQK_K / 4];       // index bits 0-7
  uint8_t qh[kQK_K / 32];      // index bit 8
  uint8_t signs[kQK_K / 8];    // one bit per value
  uint8_t scales[kQK_K / 64];  // 4-bit scales, two sub-blocks per byte
};
static_assert(sizeof(BlockIQ3_S) == 110, "iq3_s block is 2 + 64 + 8 + 32 + 4 bytes");

// x = d * (2s + 1) * (grid[g][j] + delta), grid values in {-1, 0, 1} (kIQ1SGrid), delta = +-kIQ1Delta. Sub-block
// ib: qh[ib] holds bits 8-10 of the 11-bit index of group l at bits 3l..3l+2, the 3-bit s at bits 12-14 and the
// sign of delta at bit 15 (set: negative); qs[4ib + l] holds the index's low 8 bits.
struct BlockIQ1_S {
  uint16_t d;               // f16 super-scale
  uint8_t qs[kQK_K / 8];    // index bits 0-7
  uint16_t qh[kQK_K / 32];  // index bits 8-10, scale, delta sign
};
static_assert(sizeof(BlockIQ1_S) == 50, "iq1_s block is 2 + 32 + 16 bytes");

// x = d * (2s + 1) * (grid[g][j] + delta) as IQ1_S, with a 3-bit scale per half sub-block (16 values) and a delta
// sign per group. Group l of sub-block ib: index low bits in qs[4ib + l], bits 8-10 in the low (l even) or high
// (l odd) nibble of qh[2ib + l / 2], whose remaining bit (3 or 7) is the delta sign. scales, read as 4 little-endian
// u16 words w[0..3]: w[ib / 2] holds the scales of halves 2ib, 2ib+1 at bits 6(ib % 2) and 6(ib % 2) + 3; the top
// nibbles of w[0..3] together (w[0] lowest) form the f16 super-scale d. No separate d field.
struct BlockIQ1_M {
  uint8_t qs[kQK_K / 8];       // index bits 0-7
  uint8_t qh[kQK_K / 16];      // index bits 8-10 and delta sign, one nibble per group
  uint8_t scales[kQK_K / 32];  // 3-bit half-sub-block scales and the f16 super-scale in 4 nibbles
};
static_assert(sizeof(BlockIQ1_M) == 56, "iq1_m block is 32 + 16 + 8 bytes");

// The 16 levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl), sorted ascending.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

}  // namespace pocketlm::quant
