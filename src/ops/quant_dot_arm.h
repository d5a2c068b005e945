// AArch64 kernels for quantized dot products with the Armv8.2 dot-product (SDOT) and Armv8.6 int8 matrix-multiply
// (SMMLA) instructions, which Highway 1.0.3 does not expose: its NEON path widens to int16 (SMLAL), a quarter of
// SDOT's multiplies per instruction. Chosen at run time from the CPU's hwcaps, ahead of the Highway kernels, for the
// types below; everything else (and every CPU without dotprod) keeps the Highway path. Internal to src/ops.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/quant_dot.h"

namespace pocketlm::arm_dot {

// q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, q4_K, q5_K and q6_K: SDOT, and with i8mm SMMLA for pairs of rows x pairs
// of tokens (prefill); the lattice i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m): SDOT at both
// levels. q2_K, q3_K and iq4_xs keep the Highway kernels.
bool Handles(DType wt);

// QuantMatMulRows (quant_dot.h) with these kernels when ActiveArmDotLevel() allows them and Handles(act.wt);
// false (nothing written) otherwise.
bool MatMulRows(const QuantActs& act, const uint8_t* w_rows, size_t w_row_bytes, float* y, int64_t y_stride,
                bool accumulate, int64_t r0, int64_t r1);

}  // namespace pocketlm::arm_dot
