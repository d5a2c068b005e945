// Reference quantizers on awkward inputs: all-zero blocks, one huge value, negative-only blocks, tiny values;
// outputs are finite and zeros stay zeros; formats whose grid is closed under quantization are idempotent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {
namespace {

const DType kWritable[] = {DType::kQ8_0, DType::kQ8_1, DType::kQ4_0,   DType::kQ4_1,  DType::kQ5_0,
                           DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,   DType::kQ4_K,  DType::kQ5_K,
                           DType::kQ6_K, DType::kQ8_K, DType::kIQ4_NL, DType::kIQ4_XS};

constexpr int64_t kN = 512;  // two super-blocks, sixteen 32-blocks

std::vector<float> RoundTrip(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> blocks(*RowBytes(t, x.size()));
  std::vector<float> y(x.size());
  EXPECT_TRUE(QuantizeRow(t, x.data(), blocks.data(), static_cast<int64_t>(x.size())).ok());
  EXPECT_TRUE(DequantizeRow(t, blocks.data(), y.data(), static_cast<int64_t>(x.size())).ok());
  return y;
}

std::vector<float> Gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

class QuantEdgeTest : public ::testing::TestWithParam<DType> {};

TEST_P(QuantEdgeTest, AllZeroBlocksDecodeToZero) {
  const std::vector<float> x(kN, 0.0f);
  const auto y = RoundTrip(GetParam(), x);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(y[i], 0.0f) << i;
}

TEST_P(QuantEdgeTest, ZeroBlockNextToNonZeroBlock) {
  auto x = Gaussian(kN, 1);
  std::fill(x.begin(), x.begin() + 256, 0.0f);  // first super-block (and its 32-blocks) all zero
  const auto y = RoundTrip(GetParam(), x);
  for (int64_t i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.0f) << i;
  for (int64_t i = 256; i < kN; ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
}

TEST_P(QuantEdgeTest, OneHugeValueStaysFiniteAndIsKept) {
  auto x = Gaussian(kN, 2, 0.01f);
  x[37] = 1000.0f;
  const auto y = RoundTrip(GetParam(), x);
  for (int64_t i = 0; i < kN; ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
  // The outlier sets its block's scale, so it survives to within the format's relative step.
  EXPECT_NEAR(y[37], 1000.0f, 1000.0f * 4 * testing::RelRmsBudget(GetParam()));
}

TEST_P(QuantEdgeTest, NegativeOnlyBlocks) {
  auto x = Gaussian(kN, 3);
  for (auto& v : x) v = -std::fabs(v) - 0.1f;
  const auto y = RoundTrip(GetParam(), x);
  testing::ErrorAccumulator acc;
  acc.Add(x.data(), y.data(), kN);
  for (int64_t i = 0; i < kN; ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
  // Shifted data is easier for the formats with a min and harder for the symmetric ones (q2_K uses half its
  // range); twice the Gaussian budget covers both.
  EXPECT_LT(acc.Relative(), 2 * testing::RelRmsBudget(GetParam()));
}

TEST_P(QuantEdgeTest, TinyValuesStayFinite) {
  auto x = Gaussian(kN, 4, 1e-6f);
  const auto y = RoundTrip(GetParam(), x);
  for (int64_t i = 0; i < kN; ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
}

TEST_P(QuantEdgeTest, GaussianWithinBudget) {
  const auto x = Gaussian(4096, 5);
  const auto y = RoundTrip(GetParam(), x);
  testing::ErrorAccumulator acc;
  acc.Add(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_LT(acc.Relative(), testing::RelRmsBudget(GetParam()));
}

std::string TypeName(const ::testing::TestParamInfo<DType>& info) {
  return std::string(DTypeName(info.param));
}
INSTANTIATE_TEST_SUITE_P(quant, QuantEdgeTest, ::testing::ValuesIn(kWritable), TypeName);

// quantize(dequantize(q)) == q: for Q8_0 and Q4_0 the decoded values lie on the grid of the same scale (the
// largest magnitude decodes to exactly 127*d resp. -8*d), so re-quantizing reproduces the blocks.
TEST(quantIdempotence, Q8_0AndQ4_0RequantizeToTheSameBlocks) {
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    const auto x = Gaussian(kN, 6);
    std::vector<uint8_t> q1(*RowBytes(t, kN));
    std::vector<uint8_t> q2(q1.size());
    std::vector<float> y(kN);
    ASSERT_TRUE(QuantizeRow(t, x.data(), q1.data(), kN).ok());
    ASSERT_TRUE(DequantizeRow(t, q1.data(), y.data(), kN).ok());
    ASSERT_TRUE(QuantizeRow(t, y.data(), q2.data(), kN).ok());
    EXPECT_EQ(0, std::memcmp(q1.data(), q2.data(), q1.size())) << DTypeName(t);
  }
}

// Known values: Q8_0 of a ramp, worked by hand from ggml's formula (d = 31/127, q = round(x/d)).
TEST(quantKnownValues, Q8_0Ramp) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16) * (31.0f / 16.0f);  // -31 .. +29.06
  BlockQ8_0 b;
  QuantizeRow<DType::kQ8_0>(x, &b, 32);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[31], static_cast<int8_t>(std::round(15 * 127.0 / 16.0)));
}

}  // namespace
}  // namespace pocketlm::quant
