#include "ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/matmul.h"
#include "ops/matmul_backward.h"

namespace pocketlm {
namespace grad {

template <typename Real>
double CrossEntropyRow(Real* logits, int64_t n_vocab, int32_t target, float softcap, float grad_scale, bool want_grad) {
  const auto cap = static_cast<Real>(softcap);
  if (softcap > 0) {
    for (int64_t i = 0; i < n_vocab; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
  Real mx = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;  // sum_i exp(z_i - max): each term <= 1, so the sum cannot overflow
  for (int64_t i = 0; i < n_vocab; ++i) sum += static_cast<double>(std::exp(logits[i] - mx));
  const double log_sum = std::log(sum);
  const double loss = static_cast<double>(mx) + log_sum - static_cast<double>(logits[target]);
  if (want_grad) {
    // z_i - lse in double before rounding, so small probabilities keep their relative precision, and the target's
    // p - 1 through expm1: it cancels when the model is confident, and 1 - p would otherwise lose all its digits.
    const double lse = static_cast<double>(mx) + log_sum;
    const auto scale = static_cast<Real>(grad_scale);
    for (int64_t i = 0; i < n_vocab; ++i) {
      const double shifted = static_cast<double>(logits[i]) - lse;
      Real g = i == target ? static_cast<Real>(std::expm1(shifted)) : std::exp(static_cast<Real>(shifted));
      if (softcap > 0) {
        const Real t = logits[i] / cap;  // tanh(z / cap) from the capped logit
        g *= Real{1} - t * t;
      }
      logits[i] = scale * g;
    }
  }
  return loss;
}

template double CrossEntropyRow<float>(float*, int64_t, int32_t, float, float, bool);
template double CrossEntropyRow<double>(double*, int64_t, int32_t, float, float, bool);

}  // namespace grad

CrossEntropyResult FusedOutputLoss(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                   float* dh, ThreadPool* pool, int64_t chunk_tokens, float* dw_out,
                                   const OutputRowLoss& row) {
  const int64_t n_embd = w_out.n_in(), n_vocab = w_out.n_out();
  const int64_t chunk = std::max<int64_t>(1, chunk_tokens);
  std::vector<int64_t> rows;  // counted positions, in order
  for (int64_t t = 0; t < T; ++t) {
    if (targets[t] >= 0 && targets[t] < n_vocab) {
      rows.push_back(t);
    } else if (dh != nullptr) {
      std::fill(dh + t * n_embd, dh + (t + 1) * n_embd, 0.0f);
    }
  }
  CrossEntropyResult result;
  result.n_counted = static_cast<int64_t>(rows.size());
  const int64_t n_chunk = std::min<int64_t>(chunk, result.n_counted);
  std::vector<float> hc(static_cast<size_t>(n_chunk * n_embd));       // (n, n_embd) gathered hidden states
  std::vector<float> logits(static_cast<size_t>(n_chunk * n_vocab));  // (n, n_vocab), then their gradient
  std::vector<float> dhc(dh != nullptr ? hc.size() : 0);              // (n, n_embd)
  std::vector<double> loss(static_cast<size_t>(n_chunk));
  std::vector<uint8_t> act_scratch;
  for (int64_t c0 = 0; c0 < result.n_counted; c0 += chunk) {
    const int64_t n = std::min(chunk, result.n_counted - c0);
    for (int64_t r = 0; r < n; ++r) {
      std::copy_n(h + rows[static_cast<size_t>(c0 + r)] * n_embd, n_embd, hc.data() + r * n_embd);
    }
    MatMulWeightsT(w_out, hc.data(), n, logits.data(), n_vocab, false, pool, &act_scratch);
    auto body = [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        loss[r] = row(rows[static_cast<size_t>(c0) + r], logits.data() + static_cast<int64_t>(r) * n_vocab);
      }
    };
    if (pool == nullptr) {
      body(0, static_cast<size_t>(n));
    } else {
      pool->ParallelFor(static_cast<size_t>(n), body);
    }
    for (int64_t r = 0; r < n; ++r) result.loss_sum += loss[static_cast<size_t>(r)];  // fixed order
    if (dh == nullptr) continue;
    MatMulWeightsBackwardInput(w_out, logits.data(), n, n_vocab, dhc.data(), n_embd, false, pool);
    if (dw_out != nullptr) {
      // dW += dz^T h : (n_vocab, n_embd)
      GemmF32(true, false, n_vocab, n_embd, n, 1.0f, logits.data(), n_vocab, hc.data(), n_embd, 1.0f, dw_out, n_embd,
              pool);
    }
    for (int64_t r = 0; r < n; ++r) {
      std::copy_n(dhc.data() + r * n_embd, n_embd, dh + rows[static_cast<size_t>(c0 + r)] * n_embd);
    }
  }
  return result;
}

CrossEntropyResult FusedCrossEntropy(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                     float final_softcap, float grad_scale, float* dh, ThreadPool* pool,
                                     int64_t chunk_tokens, float* dw_out) {
  const int64_t n_vocab = w_out.n_out();
  const bool want_grad = dh != nullptr;
  CrossEntropyResult r =
      FusedOutputLoss(w_out, h, targets, T, dh, pool, chunk_tokens, dw_out, [&](int64_t t, float* z) {
        return grad::CrossEntropyRow(z, n_vocab, targets[t], final_softcap, grad_scale, want_grad);
      });
  r.ce_sum = r.loss_sum;
  return r;
}

}  // namespace pocketlm
