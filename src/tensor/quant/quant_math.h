// Shared pieces of ggml's reference quantizers (ggml/src/ggml-quants.c, "Helper functions"). Internal to
// plm_quant. Each function keeps ggml's arithmetic order exactly, because the quantizers' output bytes must match
// files written by llama.cpp: a reordered float sum can flip a rounding and change a block.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/quant/blocks.h"

namespace pocketlm::quant::detail {

// Sub-block maxima below this count as all-zero (ggml's GROUP_MAX_EPS): no scale is derived from them, so an
// all-zero block quantizes to zero scales instead of dividing by zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |fval| <= 2^22 (ggml nearest_int): adding 1.5 * 2^23 pushes the fraction out
// of the mantissa under the FPU's round-to-nearest-even; the low 23 bits then hold the integer + 2^22.
inline int NearestInt(float fval) {
  const float val = fval + 12582912.f;
  int32_t i;
  std::memcpy(&i, &val, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K (ggml get_scale_min_k4):
// j < 4: scale = q[j] & 63, min = q[j+4] & 63; j >= 4: low 4 bits from the nibbles of q[j+4], top 2 bits from
// bits 6-7 of q[j-4] (scale) and q[j] (min).
inline void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// Symmetric quantization of x[0..n) to L[i] in [0, 2*nmax), value = scale * (L - nmax); returns scale.
// rmse_type 1 (the only one the reference quantizers use) weights errors by x^2 (or qw when given) and tries 18
// perturbed scales around nmax / max|x| (ggml make_qx_quants).
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// As MakeQxQuants with weights x^2 plus up to 5 rounds of coordinate descent on each L (ggml make_q3_quants).
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);

// Asymmetric quantization: L in [0, nmax], value = scale * L - the_min (the_min >= 0). Grid search over
// nstep + 1 candidate scales (rmin + rdelta*is + nmax) / (max - min), each followed by a weighted least-squares fit
// of scale and min (ggml make_qkx2_quants). Laux is n bytes of scratch.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                     float rmin, float rdelta, int nstep, bool use_mad);

// ggml's make_qkx3_quants as its importance-weighted quantizers call it (rmin -0.9, rdelta 0.05, 36 steps, squared
// error). With weights given it is make_qkx2_quants: they differ only in the x^2 default for absent weights and in
// testing max <= min instead of max == min for the all-zero case, the same test since min is clamped to <= 0.
inline float MakeQkx3Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                            uint8_t* Laux) {
  return MakeQkx2Quants(n, nmax, x, weights, L, the_min, Laux, -0.9f, 0.05f, 36, false);
}

// Non-negative quantization of x[0..n) (the sub-block scales or mins of a k-quant) to L in [0, nmax], value =
// scale * L, minimizing the quant_weights-weighted squared error: the best of 9 scales around nmax / max, then up to
// 5 rounds of coordinate descent on each L; returns the least-squares scale (ggml make_qp_quants). As in ggml, a
// negative x rounds to a negative level that L stores modulo 256, and the result is 0/0 = NaN when every weight is 0.
float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

// Sum of x[i]^2 in index order: the numerator of the variance sigma2 by which ggml's weighted quantizers widen
// their weights (each divides it differently; the division stays with the caller to keep its rounding).
float SumOfSquares(const float* x, int64_t n);

// weight[j] = qw[j] * sqrt(sigma2 + x[j]^2): the importance matrix scaled by a value's magnitude, with sigma2
// keeping small values from getting no weight (the weighting of every ggml quantize_row_*_impl that widens qw).
void ImportanceWeights(const float* x, const float* qw, int n, float sigma2, float* weight);

// w[0] + w[1] + ... in index order.
float SumInOrder(const float* w, int n);

// Index of the entry of the ascending table val[0..n) nearest to x, ties to the upper entry (ggml
// best_index_int8 as of llama.cpp b4748; later versions compare 2x against val[i-1] + val[i] instead).
inline int BestIndexInt8(int n, const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int ml = 0;
  int mu = n - 1;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) {
      mu = mav;
    } else {
      ml = mav;
    }
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// ---- Block assembly shared by the reference and the importance-weighted k-quant quantizers --------------------
// Both derive the scales differently, then store them and the values identically (ggml's quantize_row_*_ref and
// quantize_row_*_impl share these steps line for line).

// Q2_K, once y's scales, d and dmin are stored: every value requantized with its rounded sub-block scale and min
// (sub-blocks whose scale rounds to 0 keep L), then the 2-bit values packed (kquants_low.cpp).
void FinishQ2K(const float* x, uint8_t* L, BlockQ2_K* y);
// Q3_K: the 16 biased 6-bit scales ls (0..63) into the 12 scale bytes (kquants_low.cpp).
void PackQ3Scales(const int8_t* ls, uint8_t* packed);
// Q3_K, once y's scales and d are stored: values requantized to -4..3 with the rounded scales, high bits to hmask,
// low bits packed as in Q2_K (kquants_low.cpp).
void FinishQ3K(const float* x, int8_t* L, BlockQ3_K* y);
// Q4_K / Q5_K: the 8 scales ls and mins lm into the 12 bytes GetScaleMinK4 reads (bits above 6 are not masked,
// as in ggml) (kquants_high.cpp).
void PackScalesMinsK4(const uint8_t* ls, const uint8_t* lm, uint8_t* packed);
// Q4_K / Q5_K: every value requantized to 0..nmax with its rounded scale and min (kquants_high.cpp).
void RequantizeScalesMinsK4(const float* x, int nmax, uint16_t d16, uint16_t dmin16, const uint8_t* packed, uint8_t* L);
// Q4_K: values 0..15 to nibbles (kquants_high.cpp).
void PackQ4K(const uint8_t* L, uint8_t* qs);
// Q5_K: values 0..31 to nibbles and the qh bit planes (kquants_high.cpp).
void PackQ5K(const uint8_t* L, uint8_t* ql, uint8_t* qh);
// Q6_K of a row, with the importance matrix row qw or (nullptr) x^2 weights (kquants_high.cpp).
void QuantizeQ6K(const float* src, void* dst, int64_t n, const float* qw);

}  // namespace pocketlm::quant::detail
