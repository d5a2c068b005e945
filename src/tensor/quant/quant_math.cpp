// ggml's scale searches for the k-quants (ggml-quants.c: make_qx_quants, make_q3_quants, make_qkx2_quants,
// make_qp_quants) and the importance weights of its weighted quantizers.
// Expressions keep ggml's evaluation order (e.g. w*x*l is (w*x)*l); the library is built with -ffp-contract=off so
// no compiler fuses them into FMAs.
#include "tensor/quant/quant_math.h"

#include <algorithm>
#include <cmath>

namespace pocketlm::quant::detail {

namespace {
// Weight of element x in the rmse search of make_qx_quants.
inline float RmseWeight(int rmse_type, const float* qw, const float* x, int i) {
  if (qw) return qw[i];
  switch (rmse_type) {
    case 1: return x[i] * x[i];
    case 2: return 1;
    case 3: return std::fabs(x[i]);
    default: return std::sqrt(std::fabs(x[i]));
  }
}

// The weighted sums sumlx = sum w*x*l and suml2 = sum w*l*l of levels l = level(i), each stored in L[i] (as
// ggml's make_q3_quants / make_qp_quants start their coordinate descent).
template <typename Level, typename WeightFn, typename LevelFn>
void InitialSums(int n, const float* x, Level* L, WeightFn weight, LevelFn level, float* sumlx, float* suml2) {
  for (int i = 0; i < n; ++i) {
    const int l = level(i);
    L[i] = static_cast<Level>(l);
    const float w = weight(i);
    const auto fl = static_cast<float>(l);
    *sumlx += w * x[i] * fl;
    *suml2 += w * fl * fl;
  }
}

// Up to 5 rounds of coordinate descent on the levels L (make_q3_quants, make_qp_quants): each level moves to the
// value that is least-squares optimal with the others fixed (clamped by `clamp`), when that raises
// sumlx^2 / suml2. The two ggml functions differ in when they require the remaining suml2 to be positive: before
// the move (sl2_first) or after it.
template <typename Level, typename WeightFn, typename ClampFn>
void CoordinateDescent(int n, const float* x, Level* L, WeightFn weight, ClampFn clamp, bool sl2_first, float* sumlx,
                       float* suml2) {
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weight(i);
      const auto li = static_cast<float>(L[i]);
      float slx = *sumlx - w * x[i] * li;
      float sl2 = *suml2 - w * li * li;
      if (!(slx > 0) || (sl2_first && !(sl2 > 0))) continue;
      const int new_l = clamp(NearestInt(x[i] * sl2 / slx));
      if (new_l == L[i]) continue;
      const auto fl = static_cast<float>(new_l);
      slx += w * x[i] * fl;
      sl2 += w * fl * fl;
      if ((sl2_first || sl2 > 0) && slx * slx * *suml2 > *sumlx * *sumlx * sl2) {
        L[i] = static_cast<Level>(new_l);
        *sumlx = slx;
        *suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
}

}  // namespace

float MakeQxQuants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {  // all zero
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) {
      const int l = NearestInt(iscale * x[i]);
      L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
    }
    return 1 / iscale;
  }
  bool return_early = false;
  if (rmse_type < 0) {
    rmse_type = -rmse_type;
    return_early = true;
  }
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = RmseWeight(rmse_type, qw, x, i);
    const auto fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = RmseWeight(rmse_type, qw, x, i);
      const auto fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {  // all zero
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  if (do_rmse) {
    const auto weight = [x](int i) { return x[i] * x[i]; };
    const auto clamp = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
    float sumlx = 0;
    float suml2 = 0;
    InitialSums(
        n, x, L, weight, [&](int i) { return clamp(NearestInt(iscale * x[i])); }, &sumlx, &suml2);
    CoordinateDescent(n, x, L, weight, clamp, false, &sumlx, &suml2);
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
  }
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
  }
  return 1 / iscale;
}

float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                     float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {  // all zero (min was clamped to <= 0, so max == min means every x is 0)
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  const auto fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l = 0;
    float sum_l2 = 0;
    float sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const auto fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  float max = 0;
  // ggml's MAX(max, x[i]) (a NaN x[i] fails the comparison and is taken).
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max == 0) {  // all zero or negative
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const auto fnmax = static_cast<float>(nmax);
  float iscale = fnmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(NearestInt(iscale * x[i]));
  // The scale search: squared error of each candidate scale, levels capped at nmax only.
  const auto weighted_error = [&](float scale, auto level) {
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - scale * static_cast<float>(level(i));
      mse += quant_weights[i] * diff * diff;
    }
    return mse;
  };
  float best_mse = weighted_error(1 / iscale, [&](int i) { return L[i]; });
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + fnmax) / max;
    const float mse =
        weighted_error(1 / iscale_is, [&](int i) { return std::min(nmax, NearestInt(iscale_is * x[i])); });
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  // The sums use the level itself; the descent reads it back from L (modulo 256), as ggml does.
  const auto weight = [quant_weights](int i) { return quant_weights[i]; };
  const auto clamp = [nmax](int l) { return std::min(nmax, l); };
  float sumlx = 0;
  float suml2 = 0;
  InitialSums(
      n, x, L, weight, [&](int i) { return clamp(NearestInt(iscale * x[i])); }, &sumlx, &suml2);
  CoordinateDescent(n, x, L, weight, clamp, true, &sumlx, &suml2);
  return sumlx / suml2;
}

float SumOfSquares(const float* x, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  return sum;
}

void ImportanceWeights(const float* x, const float* qw, int n, float sigma2, float* weight) {
  for (int j = 0; j < n; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

float SumInOrder(const float* w, int n) {
  float sum = 0;
  for (int j = 0; j < n; ++j) sum += w[j];
  return sum;
}

}  // namespace pocketlm::quant::detail
