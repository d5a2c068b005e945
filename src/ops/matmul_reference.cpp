// Scalar reference implementations: plain loops in double accumulation, written for clarity, not speed.
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/matmul.h"
#include "tensor/half.h"
#include "tensor/quant/quant.h"

namespace pocketlm::reference {

void DequantizeRow(const TensorView& w, int64_t r, float* out) {
  const int64_t n = w.n_in();
  const uint8_t* p = w.row(r);
  switch (w.type) {
    // memcpy loads: a row may start at any byte address (tests place rows at odd addresses on purpose).
    case DType::kF32: std::memcpy(out, p, static_cast<size_t>(n) * sizeof(float)); break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = F16ToF32(h);
      }
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = BF16ToF32(h);
      }
      break;
    default: quant::GetQuantTraits(w.type).dequantize_row(p, out, n);  // callers check MatMulSupports first
  }
}

void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                    bool accumulate) {
  const int64_t n_in = w.n_in();
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = 0; o < w.n_out(); ++o) {
    reference::DequantizeRow(w, o, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      double acc = 0;
      for (int64_t i = 0; i < n_in; ++i) acc += static_cast<double>(row[i]) * x[t * n_in + i];
      float& dst = y[t * y_stride + o];
      dst = accumulate ? dst + static_cast<float>(acc) : static_cast<float>(acc);
    }
  }
}

void MatMulTransposedAccumulateRows(const TensorView& wt, const float* a, int64_t n_tokens, int64_t a_stride, float* y,
                                    int64_t y_stride, int64_t o0, int64_t o1) {
  // The specification's order: k ascending from y, each step one fused multiply-add.
  std::vector<std::vector<float>> rows(static_cast<size_t>(wt.n_out()));
  for (int64_t k = 0; k < wt.n_out(); ++k) {
    rows[static_cast<size_t>(k)].resize(static_cast<size_t>(wt.n_in()));
    reference::DequantizeRow(wt, k, rows[static_cast<size_t>(k)].data());
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t o = o0; o < o1; ++o) {
      float acc = y[t * y_stride + o];
      for (int64_t k = 0; k < wt.n_out(); ++k) {
        acc = std::fma(a[t * a_stride + k], rows[static_cast<size_t>(k)][static_cast<size_t>(o)], acc);
      }
      y[t * y_stride + o] = acc;
    }
  }
}

}  // namespace pocketlm::reference
