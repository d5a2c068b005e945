// Integer dot products of quantized weight rows with activations quantized on the fly to 8 bits, as llama.cpp's
// CPU backend does (ggml-cpu: quantize_row_q8_0/q8_1/q8_K, then ggml_vec_dot_<weight>_q8_<x>). Decoding reads each
// weight once per token, so working on the packed blocks instead of an f32 copy is what makes it fast.
//
// Activation types (GetDTypeInfo(w).vec_dot_type): Q8_0 blocks of 32 for q4_0, q5_0, q8_0 and iq4_nl; Q8_1 for
// q4_1 and q5_1 (its `s` field carries the min term); Q8_K blocks of 256 for the k-quants, iq4_xs and the lattice
// i-quants.
//
// SIMD code is written once with Highway and picked at run time once per QuantMatMulRows call; on AArch64 CPUs with
// the dotprod / i8mm extensions, kernels written with their intrinsics (quant_dot_arm.h) go first. Per weight block the
// integer sum over the block is exact (the same integer ggml computes); only the float scaling and accumulation
// order differ from the scalar reference, by rounding.
//
// Weight rows and activation rows may start at any byte address (GGUF blocks are not naturally aligned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace pocketlm {

// True for the weight types QuantMatMulRows handles: q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K,
// iq4_nl, iq4_xs and the lattice i-quants iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m.
bool HasQuantDot(DType wt);

// Bytes of one row of `n` activations in the vec-dot type of weight type `wt` (n a multiple of its block size).
// 0 when !HasQuantDot(wt).
size_t ActivationRowBytes(DType wt, int64_t n);

// out: (n_tokens, ActivationRowBytes(wt, n)) = x: (n_tokens, n) f32 quantized row by row into the vec-dot type of
// `wt`, bit-exact with quant::QuantizeRow of that type (ggml's quantize_row_q8_0_ref / q8_1_ref / q8_K_ref).
// Returns the bytes per row; 0 (nothing written) when !HasQuantDot(wt).
size_t QuantizeActivations(DType wt, const float* x, int64_t n_tokens, int64_t n, uint8_t* out);

// Quantized activations made ready for every row range of one product: the rows (not copied: `rows` must outlive
// this) plus what each weight row would otherwise recompute from them, once per product instead of once per
// QuantMatMulRows call (a product runs as many row-range calls as its threads take chunks).
struct QuantActs {
  DType wt = DType::kF32;  // the weight type the rows were quantized for
  const uint8_t* rows = nullptr;
  size_t row_bytes = 0;
  int64_t n_tokens = 0, n = 0;
  std::vector<float> d;       // (n_tokens, blocks): block scale as f32
  std::vector<float> s;       // (n_tokens, blocks): Q8_1's s as f32 (q4_1, q5_1); empty otherwise
  std::vector<int32_t> sums;  // (n_tokens, blocks): sum of the block's quants (Q8_0 activations); empty otherwise
  // Per (token, group of 32 (q4_K) / 16 (q6_K) values) for the x86 prefill panels; empty when not used:
  std::vector<float> gd;       // the block scale d_a
  std::vector<int32_t> gsums;  // q6_K: sum(y) over the group
  std::vector<float> gms;      // q4_K: d_a * sum(y) over the group
};

// Fills `out` for act: n_tokens rows of act_row_bytes from QuantizeActivations(wt, ...). Requires HasQuantDot(wt).
void PrepareQuantActs(DType wt, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, int64_t n, QuantActs* out);

// As QuantMatMulRows below, with the activations prepared once.
void QuantMatMulRows(const QuantActs& act, const uint8_t* w_rows, size_t w_row_bytes, float* y, int64_t y_stride,
                     bool accumulate, int64_t r0, int64_t r1);

// As above for q4_0 / q5_0 / q8_0 / q4_K / q6_K weights of n_out rows whose first n_out / 16 * 16 rows are interleaved
// 16 at a time (tensor/quant/interleave.h) and whose remaining rows are plain.
void QuantMatMulRowsInterleaved(const QuantActs& act, const uint8_t* w, size_t w_row_bytes, int64_t n_out, float* y,
                                int64_t y_stride, bool accumulate, int64_t r0, int64_t r1);

// True when the dispatched target has a kernel for interleaved rows of t (q4_0, q5_0, q4_K, q6_K: AVX-512; q8_0:
// AVX512-VNNI);
// elsewhere interleaving would only add a deinterleave per call, so model loading keeps the GGUF layout.
bool InterleavedIsFaster(DType t);

// For r in [r0, r1) and t < n_tokens:
//   y[t * y_stride + r] (= or += when accumulate) dot(weight row r, activation row t)
// w_rows: row r of the weights at w_rows + r * w_row_bytes (n values of type wt); act: n_tokens rows of
// act_row_bytes, each from QuantizeActivations(wt, ...). Requires HasQuantDot(wt); rows in [r0, r1) only are
// touched, so disjoint ranges can run on different threads.
void QuantMatMulRows(DType wt, const uint8_t* w_rows, size_t w_row_bytes, int64_t n, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate, int64_t r0,
                     int64_t r1);

// AArch64: the dot-product extensions the quantized kernels use (ops/quant_dot_arm.h; SDOT with dotprod, SMMLA with
// i8mm), from the CPU's hwcaps; kNone on other CPUs, where the Highway kernels run.
enum class ArmDotLevel { kNone = 0, kDotProd = 1, kI8mm = 2 };
ArmDotLevel DetectedArmDotLevel();
// The detected level capped by SetArmDotLevelCap.
ArmDotLevel ActiveArmDotLevel();
// Process-wide cap on the level used (default kI8mm: whatever the CPU has). kNone runs the Highway kernels, which
// tests use to check both paths on one CPU.
void SetArmDotLevelCap(ArmDotLevel cap);

// The kernels QuantMatMulRows runs on this CPU, for reports: the Highway target Highway dispatches to, plus
// "+DOTPROD" / "+I8MM" where the AArch64 kernels take over (e.g. "AVX3_DL", "NEON+I8MM").
std::string QuantKernelsName();

namespace reference {
// Scalar dot product of one weight row with one activation row (n values), following ggml's
// ggml_vec_dot_<wt>_q8_<x>_generic exactly: integer sums per block, then scaled and accumulated in float in ggml's
// order. 0 when !HasQuantDot(wt).
float QuantDot(DType wt, const void* w_row, const void* act_row, int64_t n);
}  // namespace reference

}  // namespace pocketlm
