// Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"): the student's
// next-token distribution is pulled toward a teacher's, both softened by a temperature T, mixed with the ordinary
// cross-entropy. Per scored position (a position FusedCrossEntropy counts), with z the student's logits (after the
// final soft-cap, if any), q = softmax(z / T) and p the teacher's distribution at the same temperature:
//
//   L = (1 - w) * CE(softmax(z), target) + w * T^2 * KL(p || q),   KL(p || q) = sum_j p_j (log p_j - log q_j).
//
// The T^2 keeps the KL gradient's magnitude comparable across temperatures (its gradient w.r.t. z scales as 1/T).
//
// Full vocabulary: dL/dz_j = (1 - w) (softmax(z)_j - [j = target]) + w T (q_j - p_j).
//
// Top-k: the teacher keeps only its k most probable tokens S and one "rest" bucket p_r = 1 - sum_S p_i; the
// student is bucketed the same way, q_r = sum_{j not in S} q_j, and
//   KL_k = sum_{i in S} p_i (log p_i - log q_i) + p_r (log p_r - log q_r).
// With d log q_i / dz_j = ([i = j] - q_j) / T and d log q_r / dz_j = ([j not in S] q_j / q_r - q_j) / T:
//   T * dKL_k/dz_j = q_j - p_j                 for j in S,
//                    q_j - p_r * q_j / q_r     for j not in S,
// i.e. the full-vocabulary gradient with the teacher's rest mass spread over the other tokens in proportion to the
// student's own probabilities. With k = n_vocab (p_r = q_r = 0) it is the full-vocabulary loss.
// (The code multiplies q_j by P = sum of the stored teacher probabilities, 1 up to their float rounding, which
// makes its gradient the exact derivative of the loss it computes: T dKL/dz_j = P q_j - p_j, resp. - p_r q_j / q_r.)
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "ops/cross_entropy.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

struct DistillParams {
  float weight = 0.5f;  // w: 0 = cross-entropy only, 1 = distillation only
  float temp = 1.0f;    // T > 0
};

// A teacher's distributions over one sequence of T positions, at the temperature of DistillParams. Rows of
// positions without a target are not read.
struct TeacherTargets {
  int64_t k = 0;                 // 0: full vocabulary
  const float* logp = nullptr;   // full: (T, n_vocab) log p; top-k: (T, k) log p of the k kept tokens
  const int32_t* ids = nullptr;  // top-k: (T, k) the kept tokens (distinct, in [0, n_vocab))
  const float* rest = nullptr;   // top-k: (T) p_r, the teacher's probability outside the kept tokens
};

// FusedCrossEntropy with the loss above at every counted position: loss_sum is the sum of L, ce_sum and kl_sum of
// its two parts (kl_sum without the w T^2 factor). Arguments and gradients as FusedCrossEntropy's.
CrossEntropyResult FusedDistillLoss(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                    float final_softcap, const TeacherTargets& teacher, const DistillParams& params,
                                    float grad_scale, float* dh, ThreadPool* pool, int64_t chunk_tokens = 32,
                                    float* dw_out = nullptr);

namespace grad {
// One position, in place, as CrossEntropyRow: z (n_vocab) raw student logits on entry; returns L and writes its
// two parts to *ce and *kl; when want_grad leaves grad_scale * dL/dz in z (through the soft-cap when softcap > 0).
// t_logp: the teacher row (n_vocab, or k with ids); rest: p_r (top-k only). Sums in double. Instantiated for float
// and double (gradient checks).
template <typename Real>
double DistillRow(Real* z, int64_t n_vocab, int32_t target, const float* t_logp, const int32_t* ids, int64_t k,
                  float rest, const DistillParams& params, float softcap, float grad_scale, bool want_grad, double* ce,
                  double* kl);
}  // namespace grad

}  // namespace pocketlm
