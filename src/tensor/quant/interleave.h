// Weight rows interleaved 16 at a time: an in-memory layout pocketlm makes when it loads a model for inference
// (never written to a file), with the same size as the rows it replaces. Types: q4_0, q5_0, q8_0, q4_K and q6_K.
//
// Why: a decode matmul reads every weight once, and with the GGUF layout (one row after another) each block of each
// row needs its own integer-to-float conversion, scaling and horizontal reduction: at 2 cores that work, not memory,
// capped q4_0 decode near 60% of the read bandwidth. Interleaved, one 512-bit vector holds 4 code bytes of 16 rows,
// so one vpdpbusd feeds 16 rows' int32 lanes and a block needs one conversion and one FMA for 16 rows (as
// llama.cpp's repacked q4_0x8 / q8_0x4 layouts do for its GEMV/GEMM kernels), and each thread reads one
// sequential stream.
//
// Unit of 16 rows r..r+15 (row_bytes = nb * S each, S = 18 / 22 / 34 for q4_0 / q5_0 / q8_0; 16 * row_bytes in
// all), per block b, 16 * S bytes at b * 16 * S:
//   d[i]            16 f16 scales, row i's block b                                  bytes 0..31
//   q5_0 only: hmask[h][k], h < 2, k < 4: 64-bit masks, bit 4i + j = the 5th bit of value 16h + 4k + j of row i
//                                                                                   bytes 32 + 8 (4h + k) ..
//   slot[k][i][j]   k < 4 (8 for q8_0), i < 16, j < 4: code byte 4k + j of row i's block b
//                                                                                   bytes C + 64k + 4i + j
// with C = 32 (96 for q5_0). Code bytes are the qs of q4_0 / q5_0 (low nibble = value 4k + j, high nibble = value
// 16 + 4k + j) and q8_0's qs xor 0x80 (the value + 128 as an unsigned byte, what vpdpbusd multiplies). hmask[h][k]
// is a byte mask over slot k's 64 bytes (AVX-512 masked byte add).
//
// q6_K, per super-block b of a unit (16 * 210 bytes at b * 3360):
//   d[i]            16 f16 super-scales                                             bytes 0..31
//   sc[g][i]        g < 16: row i's 8-bit scale of group g (values 16g..16g+15)      bytes 32 + 16g + i
//   ql[s][i][j]     s < 32: ql byte 4s + j of row i                                  bytes 288 + 64s + 4i + j
//   qh[s][i][j]     s < 16: qh byte 4s + j of row i                                  bytes 2336 + 64s + 4i + j
//
// q4_K, per super-block b of a unit (16 * 144 bytes at b * 2304):
//   d[i], dmin[i]   16 f16 super-scales each                                        bytes 0..31, 32..63
//   sc[s][i][j]     s < 3: packed scale byte 4s + j of row i (ggml's 12-byte format)  bytes 64 + 64s + 4i + j
//   qs[s][i][j]     s < 32: qs byte 4s + j of row i                                  bytes 256 + 64s + 4i + j
//
// A tensor of n_out rows holds n_out / 16 units, then its n_out % 16 remaining rows in the GGUF layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace pocketlm::quant {

inline constexpr int kInterleaveRows = 16;

// q4_0, q5_0, q8_0, q4_K and q6_K.
bool HasInterleavedLayout(DType t);

// 16 GGUF rows of row_bytes each (rows[i * row_bytes]) -> one unit (16 * row_bytes bytes). unit != rows.
void InterleaveUnit(DType t, const uint8_t* rows, size_t row_bytes, uint8_t* unit);
// The inverse: one unit -> 16 GGUF rows. rows != unit.
void DeinterleaveUnit(DType t, const uint8_t* unit, size_t row_bytes, uint8_t* rows);
// Row i (< 16) of a unit in the GGUF layout (row_bytes bytes).
void DeinterleaveRow(DType t, const uint8_t* unit, size_t row_bytes, int i, uint8_t* row);
// The whole tensor in place: its n_out / 16 units interleaved, the rest untouched.
void InterleaveRows(DType t, uint8_t* data, size_t row_bytes, int64_t n_out);

}  // namespace pocketlm::quant
