// Causal GQA attention over a whole training sequence, forward and backward, with optional document masking so
// that several documents packed into one sequence do not attend to each other.
//
// For query token t and head h (KV head g = h / (n_head / n_head_kv)) the visible keys are
//   lo(t) <= j <= t,   lo(t) = max(seg_start[t] (0 without seg_start), t - window + 1 if window > 0 else 0)
// and
//   z_j = scale * q[t, h] . k[j, g],   s_j = softcap > 0 ? softcap * tanh(z_j / softcap) : z_j
//   lse = log sum_j exp(s_j),   P_j = exp(s_j - lse),   out[t, h] = sum_j P_j v[j, g]
// The backward recomputes P from the saved lse instead of storing the (T, T) probabilities (FlashAttention,
// Dao et al. 2022, section 3.1; the D_t = dout . out shortcut is from FlashAttention-2, Dao 2023):
//   dP_j = dout[t, h] . v[j, g],   D = dout[t, h] . out[t, h],   dS_j = P_j (dP_j - D)
//   dZ_j = dS_j * (1 - (s_j / softcap)^2) (with softcap),   dq[t, h] += scale dZ_j k[j, g]
//   dk[j, g] += scale dZ_j q[t, h],   dv[j, g] += P_j dout[t, h]
//
// Shapes (row-major f32):
//   q, out, dout, dq: (T, n_head * head_dim)     k, v, dk, dv: (T, kv_stride), the first n_head_kv * head_dim
//   columns used      lse: (T, n_head)           seg_start: (T) or null, the first token of t's document
// seg_start[t] is expected in [0, t]; a value above t leaves token t with no visible key (out 0, lse -inf, no
// gradient), a negative one acts as 0.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "ops/attention.h"

namespace pocketlm {

// Writes out and lse. With seg_start null, out equals AttentionForward(p, q, T, 0, k, v, kv_stride, out, pool) up
// to float rounding. Tiled as FlashAttention (Dao et al. 2022): blocks of 64 queries x 64 keys as small matrix
// products (attention_train-inl.h, Highway), fully masked blocks skipped, one task per (query block, head).
void AttentionTrainForward(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t kv_stride,
                           int64_t T, const int32_t* seg_start, float* out, float* lse, ThreadPool* pool);

// Overwrites dq, dk and dv (every column of dk / dv rows, used or not). out and lse are the forward's results.
// Parallel over (query block, head) for dq and over (KV head, block of keys) for dk / dv, each output element written
// by one task in a fixed order: results do not depend on the number of threads. The price is computing the scores twice
// (about 7 instead of 5 head_dim-long loops per query-key pair).
void AttentionTrainBackward(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t kv_stride,
                            int64_t T, const int32_t* seg_start, const float* out, const float* lse, const float* dout,
                            float* dq, float* dk, float* dv, ThreadPool* pool);

// The same over a scalar type (float and double instantiations), for gradient checks in double.
namespace grad {
template <typename Real>
void AttentionTrainForward(const AttentionParams& p, const Real* q, const Real* k, const Real* v, int64_t kv_stride,
                           int64_t T, const int32_t* seg_start, Real* out, Real* lse, ThreadPool* pool);
template <typename Real>
void AttentionTrainBackward(const AttentionParams& p, const Real* q, const Real* k, const Real* v, int64_t kv_stride,
                            int64_t T, const int32_t* seg_start, const Real* out, const Real* lse, const Real* dout,
                            Real* dq, Real* dk, Real* dv, ThreadPool* pool);
}  // namespace grad

}  // namespace pocketlm
