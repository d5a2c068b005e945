// Scalar references for matmul_backward.h: plain loops accumulated in double, written for clarity, not speed.
#include <vector>

#include "ops/matmul.h"
#include "ops/matmul_backward.h"

namespace pocketlm::reference {

void MatMulWeightsBackwardInput(const TensorView& w, const float* dy, int64_t n_tokens, int64_t dy_stride, float* dx,
                                int64_t dx_stride, bool accumulate) {
  const int64_t n_in = w.n_in(), n_out = w.n_out();
  std::vector<float> W(static_cast<size_t>(n_in * n_out));  // (n_out, n_in)
  for (int64_t o = 0; o < n_out; ++o) reference::DequantizeRow(w, o, W.data() + o * n_in);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < n_in; ++i) {
      double acc = 0;
      for (int64_t o = 0; o < n_out; ++o) acc += static_cast<double>(dy[t * dy_stride + o]) * W[o * n_in + i];
      float& dst = dx[t * dx_stride + i];
      dst = accumulate ? dst + static_cast<float>(acc) : static_cast<float>(acc);
    }
  }
}

void GemmF32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + m] : A[m * lda + k];
        const float b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
        acc += static_cast<double>(a) * b;
      }
      float& c = C[m * ldc + n];
      const double scaled = static_cast<double>(alpha) * acc;
      c = beta == 0.0f ? static_cast<float>(scaled) : static_cast<float>(scaled + static_cast<double>(beta) * c);
    }
  }
}

}  // namespace pocketlm::reference
