// Helpers shared by the quant tests: error metrics and golden-file access.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant::testing {

// Sum of squared differences and sum of squares of the reference, accumulated in double.
struct ErrorAccumulator {
  double err2 = 0;
  double ref2 = 0;
  void Add(const float* ref, const float* got, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(got[i]) - ref[i];
      err2 += d * d;
      ref2 += static_cast<double>(ref[i]) * ref[i];
    }
  }
  void Add(const ErrorAccumulator& o) {
    err2 += o.err2;
    ref2 += o.ref2;
  }
  // RMS(error) / RMS(reference); 0 for an all-zero reference reproduced exactly.
  double Relative() const { return ref2 > 0 ? std::sqrt(err2 / ref2) : (err2 > 0 ? INFINITY : 0.0); }
};

// Budget for RMS(dequantize(quantize(x)) - x) / RMS(x) per tensor of Gaussian-like weights (the golden model's
// random weights, or N(0,1) samples). Worst values measured (llama.cpp's own files decoded by pocketlm, which are
// byte-identical to pocketlm's reference quantizer output, so both give the same numbers):
//   q8_0 .0054  q8_K .0070  q6_K .0178  q5_K .0362  q5_1 .0381  q5_0 .0429  q4_K .0716  iq4_nl .0765
//   iq4_xs .0771  q4_1 .0787  q4_0 .0864  q3_K .1512  q2_K .2965
// Each budget is that worst value plus about 15% headroom. A wrong layout, nibble order or scale decodes to
// noise (relative RMS near 1), far outside every budget.
inline double RelRmsBudget(DType t) {
  switch (t) {
    case DType::kQ8_0: return 0.0065;
    case DType::kQ8_1: return 0.0065;
    case DType::kQ8_K: return 0.0085;
    case DType::kQ6_K: return 0.021;
    case DType::kQ5_0: return 0.050;
    case DType::kQ5_1: return 0.045;
    case DType::kQ5_K: return 0.042;
    case DType::kQ4_0: return 0.100;
    case DType::kQ4_1: return 0.092;
    case DType::kQ4_K: return 0.083;
    case DType::kIQ4_NL: return 0.089;
    case DType::kIQ4_XS: return 0.089;
    case DType::kQ3_K: return 0.175;
    case DType::kQ2_K: return 0.340;
    default: return 1e-6;  // f32 / f16 / bf16 are checked elsewhere
  }
}

inline std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "";
}

}  // namespace pocketlm::quant::testing
