// Next-token cross-entropy fused with the output projection. A (T, n_vocab) logits matrix of a training sequence
// is large (512 tokens x 152k vocab = 311 MB in f32), so logits exist only for a chunk of tokens at a time: project,
// take the loss and its gradient at the logits in place, and project that gradient back to the hidden states.
#pragma once

#include <cstdint>
#include <functional>

#include "base/thread_pool.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

struct CrossEntropyResult {
  double loss_sum = 0;    // sum over counted positions of -log p(target)
  int64_t n_counted = 0;  // positions with a target in [0, n_vocab)
  // With distillation (ops/distill_loss.h) the two parts of loss_sum; cross-entropy alone: ce_sum = loss_sum.
  double ce_sum = 0, kl_sum = 0;
};

// For each position t with 0 <= targets[t] < n_vocab:
//   z = W h_t (MatMulWeightsT, the inference matmul: quantized weights see 8-bit activations as in llama.cpp),
//   z = cap tanh(z / cap) when final_softcap > 0 (Gemma 2),  loss_t = logsumexp(z) - z[target]  (in double)
//   w_out: (n_vocab, n_embd) any type MatMulSupports() accepts; h: (T, n_embd) hidden states after the final norm;
//   targets: (T), negative (or >= n_vocab) = ignored position.
// When dh is not null it is overwritten, (T, n_embd), with grad_scale * d(loss_sum)/dh (0 on ignored rows), via
// MatMulWeightsBackwardInput. For quantized w_out this is the gradient of the loss with exact activations (the
// activation rounding of the forward product is treated as identity). Ignored positions cost nothing: counted
// rows are gathered into chunks of chunk_tokens. The result does not depend on the thread count.
// When dw_out is not null (full fine-tuning; needs dh), grad_scale * d(loss_sum)/dW is added to it, (n_vocab,
// n_embd) f32.
CrossEntropyResult FusedCrossEntropy(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                     float final_softcap, float grad_scale, float* dh, ThreadPool* pool,
                                     int64_t chunk_tokens = 32, float* dw_out = nullptr);

// The projection, chunking and backward pass of FusedCrossEntropy around any per-position loss: row(t, z) gets the
// raw logits z (n_vocab) of counted position t, returns its loss and, when dh is not null, leaves grad_scale *
// d loss / dz in z. Called concurrently for distinct t. result.loss_sum sums what row returns, in position order.
using OutputRowLoss = std::function<double(int64_t t, float* z)>;
CrossEntropyResult FusedOutputLoss(const TensorView& w_out, const float* h, const int32_t* targets, int64_t T,
                                   float* dh, ThreadPool* pool, int64_t chunk_tokens, float* dw_out,
                                   const OutputRowLoss& row);

namespace grad {
// One position, in place: logits (n_vocab) holds the raw logits z on entry; returns -log softmax(cap(z))[target]
// (target in [0, n_vocab)), and when want_grad leaves grad_scale * d loss / dz in logits:
//   (softmax(cap(z)) - onehot(target)) * (1 - tanh^2(z / cap))   (the last factor only with softcap > 0).
// Max and log-sum-exp in double. Instantiated for float (used above) and double (gradient checks).
template <typename Real>
double CrossEntropyRow(Real* logits, int64_t n_vocab, int32_t target, float softcap, float grad_scale, bool want_grad);
}  // namespace grad

}  // namespace pocketlm
