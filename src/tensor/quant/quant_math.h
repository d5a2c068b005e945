// Shared pieces of ggml's reference quantizers (ggml/src/ggml-quants.c, "Helper functions"). Internal to
// plm_quant. Each function keeps ggml's arithmetic order exactly, because the quantizers' output bytes must match
// files written by llama.cpp: a reordered float sum can flip a rounding and change a block.
#pragma once

#include <cstdint>
#include <cstring>

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

}  // namespace pocketlm::quant::detail
