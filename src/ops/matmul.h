// Matrix products against stored weights: the one kernel every projection (and LoRA factor) goes through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

// True for the weight types MatMulWeightsT can read today.
bool MatMulSupports(DType t);

// y[t, o] = sum_i W[o, i] * x[t, i]   for t < n_tokens, o < W.n_out()
//   W: (n_out, n_in) in its storage type; x: (n_tokens, n_in) f32 row-major; y: (n_tokens, y_stride) f32,
//   only the first n_out columns of each row written. When `accumulate`, adds to y instead of overwriting.
// Rows of W are split across the pool's threads. f32/f16/bf16 rows are converted to f32 once and reused for every
// token; quantized weights multiply activations quantized to 8 bits (llama.cpp's numerics), so for those types
// the result differs from reference::MatMulWeightsT by that rounding. `act_scratch` (optional) holds the quantized
// activations across calls to save allocations. `after_rows` (optional) is called as after_rows(r0, r1) by the
// thread that computed output rows [r0, r1), right after it wrote them: work that only touches those rows (a LoRA
// term's B step) then shares the product's parallel region instead of needing one of its own.
void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    ThreadPool* pool, std::vector<uint8_t>* act_scratch = nullptr,
                    const std::function<void(int64_t r0, int64_t r1)>* after_rows = nullptr);

// One product of a group: y = W x, y: (n_tokens, y_stride).
struct MatMulOutput {
  const TensorView* w;
  float* y;
  int64_t y_stride;
};

// Several products of one input x: (n_tokens, n_in), each overwriting its y, in one parallel region. Decoding runs
// q, k, v (and gate, up) this way: one region instead of three, activations quantized once per weight type (the
// grouping alone measured within the noise on the Qwen2-0.5B-shaped q4_0 model; it keeps the short k and v products
// from paying a region each). Results equal separate MatMulWeightsT calls bit for bit. All weights must have n_in
// columns.
void MatMulWeightsTGroup(std::span<const MatMulOutput> outs, const float* x, int64_t n_tokens, ThreadPool* pool,
                         std::vector<uint8_t>* act_scratch = nullptr);

// Rows [r0, r1) of the same product, on the calling thread: for composing small products (LoRA factors, prompt
// attention's scores) inside a caller's own parallel region. f32/f16/bf16 rows give the same values as MatMulWeightsT;
// quantized rows are dequantized and multiplied in f32 (no 8-bit activations).
void MatMulWeightsTRows(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                        bool accumulate, int64_t r0, int64_t r1);

// y[t, o] += sum_k a[t, k] * wt[k, o]      for t < n_tokens, o in [o0, o1), on the calling thread
//   wt: (K, n_out) in f32, f16 or bf16 (ne[0] = n_out, ne[1] = K): the transpose of a (n_out, K) weight with a
//   small K, such as a LoRA B factor (K = rank) transposed at load. Each output's K terms then lie in one column,
//   so whole vectors of outputs accumulate with no horizontal sums (the (n_out, K) layout costs one reduction of
//   only K values per output). a: (n_tokens, a_stride), first K columns used; y: (n_tokens, y_stride).
//   Sums in order k = 0, 1, ... starting from y, with fused multiply-adds where the target has them (so the
//   result equals the reference's exactly on FMA targets, within one rounding per term elsewhere).
void MatMulTransposedAccumulateRows(const TensorView& wt, const float* a, int64_t n_tokens, int64_t a_stride, float* y,
                                    int64_t y_stride, int64_t o0, int64_t o1);

// Converts row `r` of `w` to f32 (n_in values). Used for embedding lookups.
void DequantizeRow(const TensorView& w, int64_t r, float* out);

namespace reference {
// Scalar reference for MatMulWeightsT (the specification the SIMD paths are tested against).
void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate);
void DequantizeRow(const TensorView& w, int64_t r, float* out);
void MatMulTransposedAccumulateRows(const TensorView& wt, const float* a, int64_t n_tokens, int64_t a_stride, float* y,
                                    int64_t y_stride, int64_t o0, int64_t o1);
}  // namespace reference

}  // namespace pocketlm
