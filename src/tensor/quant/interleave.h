// q4_0 weight rows interleaved 16 at a time: an in-memory layout pocketlm makes when it loads a model for
// inference (never written to a file), with the same size as the rows it replaces.
//
// Why: a decode matmul reads every weight once, and with the GGUF layout (one row after another) each 18-byte
// block of each row needs its own integer-to-float conversion, scaling and horizontal reduction: at 2 cores that
// work, not memory, capped q4_0 decode near 60% of the read bandwidth. Interleaved, one 512-bit vector holds 4
// nibble bytes of 16 rows, so one vpdpbusd feeds 16 rows' int32 lanes and a block needs one conversion and one FMA
// for 16 rows (as llama.cpp's repacked q4_0x8 layouts do for its GEMV/GEMM kernels).
//
// Unit of 16 rows r..r+15 (row_bytes = nb * 18 each, 16 * row_bytes in all), per block b, 288 bytes at b * 288:
//   d[i]            16 f16 scales, row i's block b             bytes 0..31
//   slot[k][i][j]   k < 4, i < 16, j < 4: byte qs[4k + j] of row i's block b (low nibble = value 4k + j,
//                   high nibble = value 16 + 4k + j, as in BlockQ4_0)    bytes 32 + 64k + 4i + j
// A tensor of n_out rows holds n_out / 16 units, then the n_out % 16 remaining rows in the GGUF layout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pocketlm::quant {

inline constexpr int kInterleaveRows = 16;
inline constexpr size_t kQ4_0x16BlockBytes = 16 * 18;

// 16 GGUF rows of row_bytes each (rows[i * row_bytes]) -> one unit (16 * row_bytes bytes). unit != rows.
void InterleaveQ4_0Unit(const uint8_t* rows, size_t row_bytes, uint8_t* unit);
// The inverse: one unit -> 16 GGUF rows. rows != unit.
void DeinterleaveQ4_0Unit(const uint8_t* unit, size_t row_bytes, uint8_t* rows);
// Row i (< 16) of a unit in the GGUF layout (row_bytes bytes).
void DeinterleaveQ4_0Row(const uint8_t* unit, size_t row_bytes, int i, uint8_t* row);
// The whole tensor in place: its n_out / 16 units interleaved, the rest untouched.
void InterleaveQ4_0Rows(uint8_t* data, size_t row_bytes, int64_t n_out);

}  // namespace pocketlm::quant
