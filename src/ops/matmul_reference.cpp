// Scalar reference implementations: plain loops in double accumulation, written for clarity, not speed.
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

}  // namespace pocketlm::reference
