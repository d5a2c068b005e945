#include "ops/distill_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace pocketlm {
namespace grad {

template <typename Real>
double DistillRow(Real* z, int64_t n_vocab, int32_t target, const float* t_logp, const int32_t* ids, int64_t k,
                  float rest, const DistillParams& params, float softcap, float grad_scale, bool want_grad, double* ce,
                  double* kl) {
  const auto cap = static_cast<Real>(softcap);
  if (softcap > 0) {
    for (int64_t i = 0; i < n_vocab; ++i) z[i] = cap * std::tanh(z[i] / cap);
  }
  const double w = params.weight, temp = params.temp, inv_t = 1.0 / temp;
  Real mx = z[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, z[i]);
  const auto dmx = static_cast<double>(mx);
  // Log-sum-exps of z (cross-entropy) and of z / T (the softened student q), each term <= 1.
  double sum1 = 0, sum_t = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double d = static_cast<double>(z[i]) - dmx;
    sum1 += std::exp(d);
    sum_t += temp == 1.0 ? 0.0 : std::exp(d * inv_t);
  }
  const double lse1 = dmx + std::log(sum1);
  const double lse_t = temp == 1.0 ? lse1 : dmx * inv_t + std::log(sum_t);
  auto log_q = [&](int64_t j) { return static_cast<double>(z[j]) * inv_t - lse_t; };
  *ce = lse1 - static_cast<double>(z[target]);

  // Top-k: the kept tokens (id, log p) in increasing id order, so "in S or not" is a merge walk over the vocabulary
  // (no n_vocab-sized mask).
  std::vector<std::pair<int32_t, float>> kept;
  double q_rest = 0;  // q_r, summed over the tokens outside S (no 1 - sum cancellation)
  double div = 0;
  // The teacher's total mass: 1 up to the float rounding of its stored log-probabilities. The gradient below uses it
  // (P q_j instead of q_j) so that it is the exact derivative of the loss computed here.
  double p_total = ids != nullptr ? static_cast<double>(rest) : 0.0;
  if (ids == nullptr) {
    for (int64_t j = 0; j < n_vocab; ++j) {
      const double lp = t_logp[j];
      if (lp > -std::numeric_limits<double>::infinity()) {
        const double p = std::exp(lp);
        div += p * (lp - log_q(j));
        p_total += p;
      }
    }
  } else {
    kept.reserve(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i) kept.emplace_back(ids[i], t_logp[i]);
    std::sort(kept.begin(), kept.end());
    size_t s = 0;
    for (int64_t j = 0; j < n_vocab; ++j) {
      if (s < kept.size() && kept[s].first == j) {
        const double lp = kept[s++].second;
        if (lp > -std::numeric_limits<double>::infinity()) {
          const double p = std::exp(lp);
          div += p * (lp - log_q(j));
          p_total += p;
        }
      } else {
        q_rest += std::exp(log_q(j));
      }
    }
    // p_r log(p_r / q_r); q_r underflowing while p_r > 0 would be an infinite loss: floor it at DBL_MIN.
    if (rest > 0) {
      div += static_cast<double>(rest) *
             (std::log(static_cast<double>(rest)) - std::log(std::max(q_rest, std::numeric_limits<double>::min())));
    }
  }
  *kl = div;
  if (want_grad) {
    const double ce_w = (1.0 - w) * grad_scale, kl_w = w * temp * grad_scale;
    // Outside S the teacher's share of q_j is p_r / q_r of it.
    const double rest_ratio =
        ids != nullptr ? static_cast<double>(rest) / std::max(q_rest, std::numeric_limits<double>::min()) : 0.0;
    size_t s = 0;
    for (int64_t j = 0; j < n_vocab; ++j) {
      // Scalar exp calls were ~18% of a distillation step on an 8k vocabulary (perf): softmax(z)_j is
      // skipped when the cross-entropy has no weight, and q_j reuses it at T = 1 (then log q_j = z_j - lse).
      const double shifted = static_cast<double>(z[j]) - lse1;
      const double sm = ce_w != 0 || temp == 1.0 ? std::exp(shifted) : 0.0;
      // softmax(z)_j - [j = target], the target's through expm1 as in CrossEntropyRow.
      const double g_ce = j == target ? std::expm1(shifted) : sm;
      const double q = temp == 1.0 ? sm : std::exp(log_q(j));
      double g_kl;
      if (ids == nullptr) {
        g_kl = p_total * q - std::exp(static_cast<double>(t_logp[j]));
      } else if (s < kept.size() && kept[s].first == j) {
        g_kl = p_total * q - std::exp(static_cast<double>(kept[s++].second));
      } else {
        g_kl = q * (p_total - rest_ratio);
      }
      double g = ce_w * g_ce + kl_w * g_kl;
      if (softcap > 0) {
        const double tc = static_cast<double>(z[j]) / softcap;  // tanh(z / cap) from the capped logit
        g *= 1.0 - tc * tc;
      }
      z[j] = static_cast<Real>(g);
    }
  }
  return (1.0 - w) * *ce + w * temp * temp * div;
}

template double DistillRow<float>(float*, int64_t, int32_t, const float*, const int32_t*, int64_t, float,
                                  const DistillParams&, float, float, bool, double*, double*);
template double DistillRow<double>(double*, int64_t, int32_t, const float*, const int32_t*, int64_t, float,
                                   const DistillParams&, float, float, bool, double*, double*);

}  // namespace grad

CrossEntropyResult FusedDistillLoss(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                    float final_softcap, const TeacherTargets& teacher, const DistillParams& params,
                                    float grad_scale, float* dh, ThreadPool* pool, int64_t chunk_tokens,
                                    float* dw_out) {
  const int64_t n_vocab = w_out.n_out();
  const int64_t stride = teacher.k > 0 ? teacher.k : n_vocab;  // of teacher.logp
  const bool want_grad = dh != nullptr;
  std::vector<double> ce(static_cast<size_t>(T)), kl(static_cast<size_t>(T));  // per position, summed in order
  CrossEntropyResult r =
      FusedOutputLoss(w_out, h, targets, T, dh, pool, chunk_tokens, dw_out, [&](int64_t t, float* z) {
        const bool topk = teacher.k > 0;
        return grad::DistillRow(z, n_vocab, targets[t], teacher.logp + t * stride,
                                topk ? teacher.ids + t * teacher.k : nullptr, teacher.k, topk ? teacher.rest[t] : 0.0f,
                                params, final_softcap, grad_scale, want_grad, &ce[static_cast<size_t>(t)],
                                &kl[static_cast<size_t>(t)]);
      });
  for (int64_t t = 0; t < T; ++t) {
    if (targets[t] >= 0 && targets[t] < n_vocab) {
      r.ce_sum += ce[static_cast<size_t>(t)];
      r.kl_sum += kl[static_cast<size_t>(t)];
    }
  }
  return r;
}

}  // namespace pocketlm
