// Matrix products against stored weights: the one kernel every projection (and LoRA factor) goes through.
#pragma once

#include <cstddef>
#include <cstdint>
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
// activations across calls to save allocations.
void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    ThreadPool* pool, std::vector<uint8_t>* act_scratch = nullptr);

// Converts row `r` of `w` to f32 (n_in values). Used for embedding lookups.
void DequantizeRow(const TensorView& w, int64_t r, float* out);

namespace reference {
// Scalar reference for MatMulWeightsT (the specification the SIMD paths are tested against).
void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate);
void DequantizeRow(const TensorView& w, int64_t r, float* out);
}  // namespace reference

}  // namespace pocketlm
