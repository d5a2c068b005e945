// MatMulWeightsT on the lattice i-quants, whose integer kernels (ops/quant_dot.h) multiply the weight blocks with the
// activations quantized to Q8_K (the numerics of llama.cpp's ggml_vec_dot_iq*_q8_K). The expected products are
// computed here in double from quant::DequantizeRow of the weights and a Q8_K round trip of x; the tolerance is far
// below that rounding's effect, so the test fails if the products stop seeing Q8_K activations (checked below too).
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "ops/matmul.h"
#include "ops_test_util.h"
#include "tensor/half.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

class MatMulIQTest : public testutil::HwyTargetTest {};
using testutil::TargetNameOf;

constexpr DType kIQTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                              DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};

// n_out rows of n_in values: random bytes, super-scale d = 0.01 .. 0.02 (for IQ1_M in the scale words' top nibbles).
std::vector<uint8_t> RandomRows(DType type, int64_t n_in, int64_t n_out, std::mt19937* rng) {
  const DTypeInfo& info = GetDTypeInfo(type);
  const int64_t n_blocks = n_in / info.block_size * n_out;
  std::vector<uint8_t> b(static_cast<size_t>(n_blocks) * info.type_size);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.01f, 0.02f);
  for (auto& v : b) v = static_cast<uint8_t>(byte(*rng));
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* blk = b.data() + i * static_cast<int64_t>(info.type_size);
    const uint16_t h = F32ToF16(scale(*rng));
    if (type == DType::kIQ1_M) {
      for (int k = 0; k < 4; ++k)
        blk[48 + 2 * k + 1] = static_cast<uint8_t>((blk[48 + 2 * k + 1] & 0x0f) | ((h >> (4 * k)) & 0xf) << 4);
    } else {
      blk[0] = static_cast<uint8_t>(h & 0xff);
      blk[1] = static_cast<uint8_t>(h >> 8);
    }
  }
  return b;
}

// y[t][o] = sum_i w[o][i] * x[t][i] in double; with abs, sum_i |w[o][i] * x[t][i]| (the scale of rounding errors).
std::vector<double> Product(const std::vector<float>& w, const std::vector<float>& x, int64_t n_in, int64_t n_out,
                            int64_t n_tokens, bool abs = false) {
  std::vector<double> y(static_cast<size_t>(n_tokens * n_out));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        const double p = static_cast<double>(w[o * n_in + i]) * x[t * n_in + i];
        acc += abs ? std::fabs(p) : p;
      }
      y[t * n_out + o] = acc;
    }
  }
  return y;
}

TEST_P(MatMulIQTest, DecodedRowsTimesQ8KRoundedActivations) {
  constexpr int64_t kNIn = 512, kNOut = 37;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  ThreadPool pool2(2);
  for (DType type : kIQTypes) {
    ASSERT_TRUE(MatMulSupports(type)) << DTypeName(type);
    const auto rows = RandomRows(type, kNIn, kNOut, &rng);
    const TensorView w = testutil::MatrixView(type, kNIn, kNOut, rows.data(), rows.size());
    std::vector<float> wf(static_cast<size_t>(kNIn * kNOut));
    ASSERT_TRUE(quant::DequantizeRow(type, rows.data(), wf.data(), kNIn * kNOut).ok());
    for (int64_t n_tokens : {1, 3, 20}) {  // 20: prefill-sized, rounding split across the pool
      std::vector<float> x(static_cast<size_t>(n_tokens * kNIn)), xr(x.size());
      for (auto& v : x) v = normal(rng);
      std::vector<uint8_t> q8(kNIn / 256 * GetDTypeInfo(DType::kQ8_K).type_size);
      for (int64_t t = 0; t < n_tokens; ++t) {
        ASSERT_TRUE(quant::QuantizeRow(DType::kQ8_K, x.data() + t * kNIn, q8.data(), kNIn).ok());
        ASSERT_TRUE(quant::DequantizeRow(DType::kQ8_K, q8.data(), xr.data() + t * kNIn, kNIn).ok());
      }
      const auto expect = Product(wf, xr, kNIn, kNOut, n_tokens);
      const auto unrounded = Product(wf, x, kNIn, kNOut, n_tokens);
      const auto scale = Product(wf, xr, kNIn, kNOut, n_tokens, /*abs=*/true);
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
        std::vector<float> y(static_cast<size_t>(n_tokens * kNOut));
        MatMulWeightsT(w, x.data(), n_tokens, y.data(), kNOut, /*accumulate=*/false, pool);
        // Errors relative to sum |w x|: f32 accumulation of 512 terms stays near 1e-6; the Q8_K rounding of x moves
        // some results by more than 1e-4 (asserted, so that the tolerance keeps its meaning).
        double max_err = 0, max_rounding = 0;
        for (size_t k = 0; k < y.size(); ++k) {
          max_err = std::max(max_err, std::fabs(y[k] - expect[k]) / scale[k]);
          max_rounding = std::max(max_rounding, std::fabs(unrounded[k] - expect[k]) / scale[k]);
        }
        EXPECT_LT(max_err, 1e-5) << DTypeName(type) << " tokens=" << n_tokens << " pool=" << (pool != nullptr);
        EXPECT_GT(max_rounding, 1e-4) << DTypeName(type) << " tokens=" << n_tokens;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, MatMulIQTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         TargetNameOf);

}  // namespace
}  // namespace pocketlm
