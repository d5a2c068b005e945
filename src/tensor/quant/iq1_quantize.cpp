// Quantizers of IQ1_S and IQ1_M (layouts in blocks.h): ggml-quants.c's quantize_row_iq1_s_impl and
// quantize_row_iq1_m_impl (llama.cpp c392e50), the path llama-quantize takes with an importance matrix (it refuses
// these types without one, and so does pocketlm: quant_traits.cpp gives them only a weighted quantizer).
//
// Values take the levels -1, 0, 1 shifted by +-delta (x_p / x_m below). Per sub-block (32 values for IQ1_S, 16 for
// IQ1_M) the weighted least-squares problem is solved exactly over the splits of the sorted values into three runs,
// the resulting groups of 8 are mapped onto the 2048-entry grid (best neighbour when off it, lattice_codebook.h),
// and the scales are coded in 3 bits relative to the largest.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"
#include "tensor/quant/lattice_codebook.h"
#include "tensor/quant/quant.h"
#include "tensor/quant/quant_math.h"

namespace pocketlm::quant {

namespace {

using detail::LatticeCodebook;
using detail::MaxOf;

// The three levels with the delta added (ggml x_p, shift +1) or subtracted (x_m, shift -1).
constexpr float kXp[3] = {-1 + kIQ1Delta, kIQ1Delta, 1 + kIQ1Delta};
constexpr float kXm[3] = {-1 - kIQ1Delta, -kIQ1Delta, 1 - kIQ1Delta};

// ggml GROUP_MAX_EPS_IQ1_S / GROUP_MAX_EPS_IQ1_M: sub-blocks whose largest magnitude is below count as zero.
constexpr float kGroupMaxEpsIQ1S = 1e-12f;
constexpr float kGroupMaxEpsIQ1M = 1e-7f;

// Indices 0..n-1 ordered by ascending x, as glibc's qsort orders ggml's (value, index) pairs with iq1_sort_helper:
// glibc sorts arrays this small with its top-down merge sort (msort_with_tmp), which takes the left element unless
// the comparator says it is greater, so equal values keep index order. The same merges are done here, so even NaN
// (equal to everything under that comparator) lands where glibc puts it.
void MergeSortByValue(const float* x, int* idx, int* tmp, int n) {
  if (n <= 1) return;
  const int n1 = n / 2;
  MergeSortByValue(x, idx, tmp, n1);
  MergeSortByValue(x, idx + n1, tmp, n - n1);
  int a = 0;
  int b = n1;
  int out = 0;
  while (a < n1 && b < n) {
    // iq1_sort_helper(l, r) > 0, i.e. l > r: take the right one.
    tmp[out++] = x[idx[a]] > x[idx[b]] ? idx[b++] : idx[a++];
  }
  while (a < n1) tmp[out++] = idx[a++];
  std::memcpy(idx, tmp, sizeof(int) * out);
}

void SortedOrder(const float* x, int n, int* idx) {
  int tmp[32];
  for (int j = 0; j < n; ++j) idx[j] = j;
  MergeSortByValue(x, idx, tmp, n);
}

// Levels of the best split: sorted positions [0, i1) -> 0, [i1, i2) -> 1, [i2, n) -> 2; a negative scale mirrors
// them (2 - L) and turns positive (the caller flips the delta signs).
void SplitLevels(const int* order, int n, int i1, int i2, float* scale, int8_t* L, bool* mirrored) {
  for (int j = 0; j < n; ++j) L[order[j]] = static_cast<int8_t>(j < i1 ? 0 : j < i2 ? 1 : 2);
  *mirrored = *scale < 0;
  if (*mirrored) {
    for (int j = 0; j < n; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
    *scale = -*scale;
  }
}

// ggml iq1_find_best_neighbour2: among the neighbours of an off-grid key, the entry minimizing
// sum w (scale * xg[level] - x)^2, first on ties; levels to L. ggml falls back to the whole grid when no distance is
// below FLT_MAX (inf or NaN inputs; its fallback reads x at the grid index, out of bounds: here at the value index).
int BestNeighbourShifted(const LatticeCodebook& cb, uint16_t key, const float* x, const float* weight, float scale,
                         const float* xg, int8_t* L) {
  float best_score = FLT_MAX;
  int grid_index = -1;
  auto consider = [&](int j) {
    const int8_t* pg = cb.Entry(j);
    float d2 = 0;
    for (int i = 0; i < 8; ++i) {
      const float q = xg[(pg[i] - 1) / 2];
      const float w = weight[i];
      const float diff = scale * q - x[i];
      d2 += w * diff * diff;
    }
    if (d2 < best_score) {
      best_score = d2;
      grid_index = j;
    }
  };
  for (const uint16_t j : cb.Neighbours(key)) consider(j);
  for (int j = 0; grid_index < 0 && j < 2048; ++j) consider(j);
  if (grid_index < 0) grid_index = 0;
  cb.Levels(grid_index, L);
  return grid_index;
}

// Maps the groups of 8 levels of a sub-block onto the grid; xx(k) gives group k's shifted levels. Returns whether
// all were on it.
template <typename ShiftedLevels>
bool GridGroups(const LatticeCodebook& cb, int ngroups, const float* xb, const float* weight, float scale,
                ShiftedLevels xx, int8_t* L, uint16_t* index) {
  bool all_on_grid = true;
  for (int k = 0; k < ngroups; ++k) {
    const uint16_t key = cb.KeyOfLevels(L + 8 * k);
    int grid_index = cb.Find(key);
    if (grid_index < 0) {
      all_on_grid = false;
      grid_index = BestNeighbourShifted(cb, key, xb + 8 * k, weight + 8 * k, scale, xx(k), L + 8 * k);
    }
    index[k] = static_cast<uint16_t>(grid_index);
  }
  return all_on_grid;
}

// The least-squares scale of the chosen entries, when a group moved off its split (ggml keeps the split's scale
// unless both sums are positive).
template <typename ShiftedLevels>
void RefitScale(const LatticeCodebook& cb, int ngroups, const float* xb, const float* weight, ShiftedLevels xx,
                const uint16_t* index, float* scale) {
  float sumqx = 0;
  float sumq2 = 0;
  for (int k = 0; k < ngroups; ++k) {
    const int8_t* pg = cb.Entry(index[k]);
    for (int j = 0; j < 8; ++j) {
      const float w = weight[8 * k + j];
      const float q = xx(k)[(pg[j] - 1) / 2];
      sumqx += w * q * xb[8 * k + j];
      sumq2 += w * q * q;
    }
  }
  if (sumqx > 0 && sumq2 > 0) *scale = sumqx / sumq2;
}

float LargestMagnitude(const float* xb, int n) {
  float max = std::fabs(xb[0]);
  for (int i = 1; i < n; ++i) max = MaxOf(max, std::fabs(xb[i]));
  return max;
}

float Sigma2(const float* xbl) {
  return 2 * detail::SumOfSquares(xbl, kQK_K) / static_cast<float>(kQK_K);
}

// IQ1_S's 2 delta-sign combinations of a 32-value sub-block: 0 adds the delta (ggml shift +1), 1 subtracts it.
const float* IQ1SShifted(int combo, int /*group*/) {
  return combo == 0 ? kXp : kXm;
}

// IQ1_S split search: prefix sums over the sorted values give every split's sums in O(1); each split is tried with
// both combinations. Returns false when no split has a positive sumq2 (all weights zero, where ggml aborts).
bool BestSplitIQ1S(const float* xb, const float* weight, const int* order, float* scale, int* i1_best, int* i2_best,
                   int* combo) {
  constexpr int kN = 32;
  float sumx[kN + 1];
  float sumw[kN + 1];
  sumx[0] = sumw[0] = 0;
  for (int j = 0; j < kN; ++j) {
    const int i = order[j];
    sumx[j + 1] = sumx[j] + weight[i] * xb[i];
    sumw[j + 1] = sumw[j] + weight[i];
  }
  float best_score = -FLT_MIN;
  for (int i1 = 0; i1 <= kN; ++i1) {
    for (int i2 = i1; i2 <= kN; ++i2) {
      for (int c = 0; c < 2; ++c) {
        const float* xx = IQ1SShifted(c, 0);
        const float sumqx =
            (sumx[i1] - sumx[0]) * xx[0] + (sumx[i2] - sumx[i1]) * xx[1] + (sumx[kN] - sumx[i2]) * xx[2];
        const float sumq2 = (sumw[i1] - sumw[0]) * xx[0] * xx[0] + (sumw[i2] - sumw[i1]) * xx[1] * xx[1] +
                            (sumw[kN] - sumw[i2]) * xx[2] * xx[2];
        if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
          *scale = sumqx / sumq2;
          best_score = *scale * sumqx;
          *i1_best = i1;
          *i2_best = i2;
          *combo = c;
        }
      }
    }
  }
  return *combo >= 0;
}

// IQ1_M's 4 delta-sign combinations of a 16-value sub-block: combination k uses x_p for its first 8 values when
// k < 2 and for its last 8 when k is even (ggml's "0: +,+  1: +,-  2: -,+  3: -,-").
const float* IQ1MShifted(int combo, int half) {
  const bool plus = half == 0 ? combo < 2 : combo % 2 == 0;
  return plus ? kXp : kXm;
}

// IQ1_M sub-block search: for every split, the sums of all 4 combinations accumulated over the sorted values
// (ggml's order: each sum adds the values in sorted order). Returns false as BestSplitIQ1S.
bool BestSplitIQ1M(const float* xb, const float* weight, const int* order, float* scale, int* i1_best, int* i2_best,
                   int* combo) {
  constexpr int kN = 16;
  float best_score = -FLT_MIN;
  for (int i1 = 0; i1 <= kN; ++i1) {
    for (int i2 = i1; i2 <= kN; ++i2) {
      float sumqx[4] = {};
      float sumq2[4] = {};
      for (int j = 0; j < kN; ++j) {
        const int i = order[j];
        const int level = j < i1 ? 0 : j < i2 ? 1 : 2;
        for (int k = 0; k < 4; ++k) {
          const float xv = IQ1MShifted(k, i < kN / 2 ? 0 : 1)[level];
          sumqx[k] += weight[i] * xv * xb[i];
          sumq2[k] += weight[i] * xv * xv;
        }
      }
      for (int k = 0; k < 4; ++k) {
        if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best_score * sumq2[k]) {
          *scale = sumqx[k] / sumq2[k];
          best_score = *scale * sumqx[k];
          *i1_best = i1;
          *i2_best = i2;
          *combo = k;
        }
      }
    }
  }
  return *combo >= 0;
}

// One IQ1 format's sub-block search: its length, its delta-sign combinations (mirroring the levels maps combination
// c to ncombos - 1 - c: +/- to -/+, (+,-) to (-,+)), ggml's zero threshold and its split search.
struct IQ1Format {
  int n;
  int ncombos;
  float zero_eps;
  bool (*best_split)(const float* xb, const float* weight, const int* order, float* scale, int* i1, int* i2,
                     int* combo);
  const float* (*shifted)(int combo, int group);
};
constexpr IQ1Format kIQ1S = {32, 2, kGroupMaxEpsIQ1S, BestSplitIQ1S, IQ1SShifted};
constexpr IQ1Format kIQ1M = {16, 4, kGroupMaxEpsIQ1M, BestSplitIQ1M, IQ1MShifted};

// The sub-blocks of one super-block: grid entries, scales and delta-sign combinations. combo[] is carried across
// the super-blocks of a row: a sub-block ggml treats as zero keeps the combination of the last non-zero sub-block at
// its position (ggml reads a stale array there; at a row's start pocketlm uses 0, i.e. +).
struct IQ1SuperBlock {
  float scales[16];
  bool zero[16];
  uint16_t index[16][4];
  int combo[16] = {};
  float max_scale;
};

void SearchIQ1SuperBlock(const IQ1Format& f, const float* xbl, const float* qw, float sigma2, IQ1SuperBlock* r) {
  const LatticeCodebook& cb = detail::GetLatticeCodebook(detail::LatticeGrid::kIQ1S);
  float weight[32];
  int order[32];
  int8_t L[32];
  r->max_scale = 0;
  for (int ib = 0; ib < kQK_K / f.n; ++ib) {
    const float* xb = xbl + f.n * ib;
    detail::ImportanceWeights(xb, qw + f.n * ib, f.n, sigma2, weight);
    r->scales[ib] = 0;
    const float max = LargestMagnitude(xb, f.n);
    r->zero[ib] = true;
    if (max < f.zero_eps) continue;
    SortedOrder(xb, f.n, order);
    float scale = max;
    int i1 = -1;
    int i2 = -1;
    int combo = -1;
    if (!f.best_split(xb, weight, order, &scale, &i1, &i2, &combo)) continue;
    r->zero[ib] = false;
    bool mirrored = false;
    SplitLevels(order, f.n, i1, i2, &scale, L, &mirrored);
    if (mirrored) combo = f.ncombos - 1 - combo;
    auto shifted = [&f, combo](int k) { return f.shifted(combo, k); };
    if (!GridGroups(cb, f.n / 8, xb, weight, scale, shifted, L, r->index[ib])) {
      RefitScale(cb, f.n / 8, xb, weight, shifted, r->index[ib], &scale);
    }
    r->scales[ib] = scale;
    r->combo[ib] = combo;
    r->max_scale = MaxOf(r->max_scale, scale);
  }
}

}  // namespace

// IQ1_S: per 32-value sub-block, qs[4ib + k] = index bits 0-7 of group k and qh[ib] = their bits 8-10 at 3k |
// 3-bit scale << 12 | delta sign << 15 (set: subtracted); super-scale stored x 1.125.
template <>
void QuantizeRowWeighted<DType::kIQ1_S>(const float* src, void* dst, int64_t n, const float* weights) {
  auto* y = static_cast<BlockIQ1_S*>(dst);
  IQ1SuperBlock r;
  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    const float* xbl = src + kQK_K * ibl;
    SearchIQ1SuperBlock(kIQ1S, xbl, weights + kQK_K * ibl, Sigma2(xbl), &r);
    std::memset(&y[ibl], 0, sizeof(y[ibl]));
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      for (int k = 0; k < 4 && !r.zero[ib]; ++k) {
        y[ibl].qs[4 * ib + k] = static_cast<uint8_t>(r.index[ib][k] & 255);
        y[ibl].qh[ib] = static_cast<uint16_t>(y[ibl].qh[ib] | (r.index[ib][k] >> 8) << 3 * k);
      }
    }
    if (r.max_scale == 0) continue;
    const float id = detail::EncodeSuperScale(r.max_scale, 15, 1.125f, &y[ibl].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int l = detail::SubBlockScaleCode(id, r.scales[ib], 7) | (r.combo[ib] == 1 ? 8 : 0);
      y[ibl].qh[ib] = static_cast<uint16_t>(y[ibl].qh[ib] | l << 12);
    }
  }
}

// IQ1_M: per 16-value sub-block (half of the format's 32), qs[2ib + k] = index bits 0-7 of group k and qh[ib] =
// group 0's bits 8-10 | its delta sign << 3 | group 1's << 4 | sign << 7; 3-bit scales, 4 per u16 word of
// `scales`, whose top nibbles hold the f16 super-scale: refit by least squares over the decoded block, x 1.1125.
template <>
void QuantizeRowWeighted<DType::kIQ1_M>(const float* src, void* dst, int64_t n, const float* weights) {
  constexpr uint8_t kMasks[4] = {0x00, 0x80, 0x08, 0x88};  // delta sign bits of each combination
  const LatticeCodebook& cb = detail::GetLatticeCodebook(detail::LatticeGrid::kIQ1S);
  auto* y = static_cast<BlockIQ1_M*>(dst);
  IQ1SuperBlock r;
  float weight[16];
  for (int64_t ibl = 0; ibl < n / kQK_K; ++ibl) {
    const float* xbl = src + kQK_K * ibl;
    const float* wbl = weights + kQK_K * ibl;
    const float sigma2 = Sigma2(xbl);
    SearchIQ1SuperBlock(kIQ1M, xbl, wbl, sigma2, &r);
    std::memset(&y[ibl], 0, sizeof(y[ibl]));
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      if (r.zero[ib]) continue;
      y[ibl].qs[2 * ib] = static_cast<uint8_t>(r.index[ib][0] & 255);
      y[ibl].qs[2 * ib + 1] = static_cast<uint8_t>(r.index[ib][1] & 255);
      y[ibl].qh[ib] = static_cast<uint8_t>((r.index[ib][0] >> 8) | (r.index[ib][1] >> 8) << 4);
    }
    if (r.max_scale == 0) continue;
    // Codes of the sub-block scales, then d refit over the block as decoded (zero sub-blocks too: entry 0 with
    // their carried combination, as in ggml).
    uint16_t sc[4] = {};
    float d = r.max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0;
    float sumq2 = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const int l = detail::SubBlockScaleCode(id, r.scales[ib], 7);
      sc[ib / 4] = static_cast<uint16_t>(sc[ib / 4] | l << 3 * (ib % 4));
      y[ibl].qh[ib] |= kMasks[r.combo[ib]];
      const float* xb = xbl + 16 * ib;
      detail::ImportanceWeights(xb, wbl + 16 * ib, 16, sigma2, weight);
      for (int k = 0; k < 2; ++k) {
        const float* xx = IQ1MShifted(r.combo[ib], k);
        const int8_t* pg = cb.Entry(y[ibl].qs[2 * ib + k] | ((y[ibl].qh[ib] >> 4 * k) & 7) << 8);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j];
          const float q = xx[(pg[j] - 1) / 2] * static_cast<float>(2 * l + 1);
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t d16 = F32ToF16(d * 1.1125f);
    sc[0] = static_cast<uint16_t>(sc[0] | (d16 & 0x000f) << 12);
    sc[1] = static_cast<uint16_t>(sc[1] | (d16 & 0x00f0) << 8);
    sc[2] = static_cast<uint16_t>(sc[2] | (d16 & 0x0f00) << 4);
    sc[3] = static_cast<uint16_t>(sc[3] | (d16 & 0xf000));
    for (int w = 0; w < 4; ++w) {
      y[ibl].scales[2 * w] = static_cast<uint8_t>(sc[w]);
      y[ibl].scales[2 * w + 1] = static_cast<uint8_t>(sc[w] >> 8);
    }
  }
}

}  // namespace pocketlm::quant
