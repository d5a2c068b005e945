// The matrix products of the backward pass: the input gradient of a projection through stored (possibly
// quantized) weights, and a general f32 GEMM for LoRA factors and their gradients.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

// dx[t, i] (+)= sum_o dy[t, o] * W[o, i]      for t < n_tokens, i < W.n_in()    (dx = dy W, the VJP of
// MatMulWeightsT with respect to x)
//   W: (n_out, n_in) in any type MatMulSupports() accepts; dy: (n_tokens, dy_stride), first n_out columns used;
//   dx: (n_tokens, dx_stride), first n_in columns written (or added to when `accumulate`).
// W is dequantized exactly as DequantizeRow does (so a LoRA over a quantized base sees the inference weights),
// a (256 rows x 256 columns) tile at a time into f32 scratch that every token reuses. Threads split the n_in
// columns at tile boundaries, so each dx element has one writer and a fixed summation order: results do not
// depend on the thread count.
void MatMulWeightsBackwardInput(const TensorView& w, const float* dy, int64_t n_tokens, int64_t dy_stride, float* dx,
                                int64_t dx_stride, bool accumulate, ThreadPool* pool);

// C = alpha * op(A) op(B) + beta * C     (row-major; op(A): (M, K), op(B): (K, N), C: (M, N) with stride ldc)
//   trans_a: A is stored (K, M) with stride lda and op(A) = A^T; otherwise stored (M, K).
//   trans_b: B is stored (N, K) with stride ldb and op(B) = B^T; otherwise stored (K, N).
// beta == 0 overwrites C without reading it (NaN / uninitialized C is fine). Cache-blocked (GotoBLAS-style packing,
// Goto & van de Geijn 2008) with a Highway register-tile kernel; tasks are fixed (M, N) blocks, so results do not
// depend on the thread count. K == 0 gives C = beta * C.
void GemmF32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool);

namespace reference {
// Plain loops over reference::DequantizeRow rows, accumulated in double: the specification of the above.
void MatMulWeightsBackwardInput(const TensorView& w, const float* dy, int64_t n_tokens, int64_t dy_stride, float* dx,
                                int64_t dx_stride, bool accumulate);
// Plain triple loop accumulated in double.
void GemmF32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
}  // namespace reference

}  // namespace pocketlm
