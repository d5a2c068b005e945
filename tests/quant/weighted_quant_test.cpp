// Importance-weighted quantizers (QuantizeRowWeighted, llama-quantize's --imatrix path) of the legacy, k-quant and
// IQ4 types: conformance with llama.cpp's bytes on a fixed fixture, and properties of ggml's weighted searches.
// The main conformance check runs outside the repository: ggml-quants.c of llama.cpp c392e50 built next to
// pocketlm, both quantizing hundreds of thousands of random rows and weight vectors, compared byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "tensor/quant/quant.h"
#include "weighted_quant_fixture.h"

namespace pocketlm::quant {
namespace {

const DType kWeighted[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,   DType::kQ2_K,  DType::kQ3_K,
                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kIQ4_NL, DType::kIQ4_XS};

// Rows from std::mt19937 (whose output sequence the standard fixes) by integer arithmetic and exact float scaling
// only, so every target reproduces the fixture's inputs bit for bit. Box-Muller is avoided on purpose: log and cos
// are not correctly rounded, and libm's last bit differs between targets; a sum of four uniforms is bell-shaped
// enough for quantization.
class RowGenerator {
 public:
  explicit RowGenerator(uint32_t seed) : rng_(seed) {}
  // Integer in [0, 2^bits).
  uint32_t Bits(int bits) { return rng_() >> (32 - bits); }
  // Bell-shaped in (-2, 2), mean 0, multiples of 2^-12.
  float Bell() {
    const int s = static_cast<int>(Bits(12) + Bits(12) + Bits(12) + Bits(12)) - 2 * 4096;
    return std::ldexp(static_cast<float>(s), -12);
  }

 private:
  std::mt19937 rng_;
};

constexpr int64_t kFixtureN = 512;  // two super-blocks, sixteen 32-blocks

// Fixture row 0: values of scale 2^-3 with three outliers; weights k / 2^16 (k 16 random bits), every 7th 0.
// Row 1: values of scale 2^-9 with an all-zero 32-block and a 16-block 2^6 times larger; weights 2^e, e in
// [-12, 11]. No 16-value sub-block has all-zero weights (ggml divides 0/0 there: a NaN scale, whose sign bit is
// the target's default NaN).
void FixtureRow(int row, std::vector<float>* x, std::vector<float>* w) {
  RowGenerator gen(row == 0 ? 20240601u : 20240602u);
  x->resize(kFixtureN);
  w->resize(kFixtureN);
  for (int64_t j = 0; j < kFixtureN; ++j) {
    (*x)[j] = std::ldexp(gen.Bell(), row == 0 ? -3 : -9);
    if (row == 0) {
      (*w)[j] = j % 7 == 0 ? 0.f : std::ldexp(static_cast<float>(gen.Bits(16)), -16);
    } else {
      (*w)[j] = std::ldexp(1.f, static_cast<int>(gen.Bits(16) % 24) - 12);
    }
  }
  if (row == 0) {
    (*x)[17] = 3.f;
    (*x)[300] = -2.5f;
    (*x)[411] = 1.75f;
  } else {
    for (int64_t j = 64; j < 96; ++j) (*x)[j] = 0.f;
    for (int64_t j = 320; j < 336; ++j) (*x)[j] = std::ldexp((*x)[j], 6);
  }
}

std::vector<uint8_t> QuantizeWeighted(DType t, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<uint8_t> out(*RowBytes(t, x.size()));
  EXPECT_TRUE(QuantizeRow(t, x.data(), out.data(), static_cast<int64_t>(x.size()), w.data()).ok());
  return out;
}

std::vector<float> Dequantize(DType t, const std::vector<uint8_t>& blocks, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(t, blocks.data(), y.data(), n).ok());
  return y;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

class WeightedQuantTest : public ::testing::TestWithParam<DType> {};

TEST_P(WeightedQuantTest, MatchesLlamaCppFixture) {
  const DType t = GetParam();
  const char* expected = nullptr;
  for (const auto& f : testing::kWeightedFixtures) {
    if (f.type == t) expected = f.hex;
  }
  ASSERT_NE(expected, nullptr);
  std::string got;
  for (int row = 0; row < 2; ++row) {
    std::vector<float> x;
    std::vector<float> w;
    FixtureRow(row, &x, &w);
    got += Hex(QuantizeWeighted(t, x, w));
  }
  ASSERT_EQ(got.size(), std::strlen(expected));
  for (size_t i = 0; i < got.size(); i += 2) {
    ASSERT_EQ(got.substr(i, 2), std::string(expected + i, 2)) << "first differing byte " << i / 2;
  }
}

// Every search compares sums of weighted terms with each other (never with a constant), so multiplying all weights
// by a power of two, exactly, changes no decision: the bytes stay the same.
TEST_P(WeightedQuantTest, OnlyRelativeWeightsMatter) {
  const DType t = GetParam();
  std::vector<float> x;
  std::vector<float> w;
  FixtureRow(0, &x, &w);
  const auto base = QuantizeWeighted(t, x, w);
  for (int e : {-20, 7, 30}) {
    std::vector<float> scaled(w);
    for (auto& v : scaled) v = std::ldexp(v, e);
    EXPECT_EQ(Hex(QuantizeWeighted(t, x, scaled)), Hex(base)) << "weights * 2^" << e;
  }
}

// Columns weighted 2^10 times more than the others are reproduced more closely than under uniform weights.
TEST_P(WeightedQuantTest, HeavyColumnsGetSmallerError) {
  const DType t = GetParam();
  constexpr int64_t kN = 1024;
  double err_uniform = 0;
  double err_heavy = 0;
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    RowGenerator gen(seed);
    std::vector<float> x(kN);
    for (auto& v : x) v = gen.Bell();
    const std::vector<float> uniform(kN, 1.f);
    std::vector<float> heavy(kN, 1.f);
    for (int64_t j = 0; j < kN; j += 8) heavy[j] = 1024.f;
    const auto y_uniform = Dequantize(t, QuantizeWeighted(t, x, uniform), kN);
    const auto y_heavy = Dequantize(t, QuantizeWeighted(t, x, heavy), kN);
    for (int64_t j = 0; j < kN; j += 8) {
      err_uniform += std::pow(static_cast<double>(y_uniform[j]) - x[j], 2);
      err_heavy += std::pow(static_cast<double>(y_heavy[j]) - x[j], 2);
    }
  }
  EXPECT_LT(err_heavy, 0.7 * err_uniform) << DTypeName(t);
}

TEST_P(WeightedQuantTest, ZeroRowDecodesToZero) {
  const DType t = GetParam();
  const std::vector<float> x(kFixtureN, 0.f);
  std::vector<float> x1;
  std::vector<float> w;
  FixtureRow(1, &x1, &w);
  const auto blocks = QuantizeWeighted(t, x, w);
  for (float v : Dequantize(t, blocks, kFixtureN)) ASSERT_EQ(v, 0.f);
  // Every type but the IQ4 ones (whose zero is table index 8, value +1 times a zero scale) stores zero bytes.
  if (t != DType::kIQ4_NL && t != DType::kIQ4_XS) {
    for (uint8_t b : blocks) ASSERT_EQ(b, 0);
  }
}

// Magnitudes across the range an f16 scale represents and weights spread over 24 decades: no NaN or inf.
TEST_P(WeightedQuantTest, ExtremeInputsStayFinite) {
  const DType t = GetParam();
  RowGenerator gen(7);
  for (int scale_exp : {-24, -8, 0, 12}) {
    std::vector<float> x(kFixtureN);
    std::vector<float> w(kFixtureN);
    for (int64_t j = 0; j < kFixtureN; ++j) {
      x[j] = std::ldexp(gen.Bell(), scale_exp);
      w[j] = std::ldexp(1.f, static_cast<int>(gen.Bits(16) % 80) - 40);
    }
    x[5] = std::ldexp(1.9f, scale_exp + 2);                            // an outlier
    for (int64_t j = 256; j < 288; ++j) x[j] = std::ldexp(x[j], -20);  // a nearly-zero 32-block
    for (float v : Dequantize(t, QuantizeWeighted(t, x, w), kFixtureN)) {
      ASSERT_TRUE(std::isfinite(v)) << DTypeName(t) << " scale 2^" << scale_exp;
    }
  }
}

TEST_P(WeightedQuantTest, CheckedEntryPointDispatchesAndRejectsPartialBlocks) {
  const DType t = GetParam();
  const QuantTraits& traits = GetQuantTraits(t);
  ASSERT_NE(traits.quantize_row_weighted, nullptr);
  ASSERT_NE(traits.quantize_row, nullptr);
  EXPECT_FALSE(NeedsImportanceMatrix(t));
  std::vector<float> x;
  std::vector<float> w;
  FixtureRow(0, &x, &w);
  std::vector<uint8_t> direct(*RowBytes(t, kFixtureN));
  traits.quantize_row_weighted(x.data(), direct.data(), kFixtureN, w.data());
  EXPECT_EQ(Hex(QuantizeWeighted(t, x, w)), Hex(direct));
  // Without weights: the reference quantizer.
  std::vector<uint8_t> reference(direct.size());
  std::vector<uint8_t> checked(direct.size());
  traits.quantize_row(x.data(), reference.data(), kFixtureN);
  ASSERT_TRUE(QuantizeRow(t, x.data(), checked.data(), kFixtureN, nullptr).ok());
  EXPECT_EQ(Hex(checked), Hex(reference));
  // A row that is not a whole number of blocks is refused before anything is written.
  const int64_t block = GetDTypeInfo(t).block_size;
  for (int64_t n : {block + 1, block - 1, 2 * block + 16}) {
    std::vector<uint8_t> out(direct.size(), 0xA5);
    EXPECT_EQ(QuantizeRow(t, x.data(), out.data(), n, w.data()).code(), ErrorCode::kInvalidArgument) << n;
    for (uint8_t b : out) ASSERT_EQ(b, 0xA5);
  }
}

std::string TypeName(const ::testing::TestParamInfo<DType>& info) {
  return std::string(DTypeName(info.param));
}
INSTANTIATE_TEST_SUITE_P(quant, WeightedQuantTest, ::testing::ValuesIn(kWeighted), TypeName);

// ggml quantize_row_q6_K_impl passes the matrix row straight to make_qx_quants, whose default weights are x^2: with
// the matrix x^2 the weighted quantizer is the reference one, byte for byte.
TEST(WeightedQuantQ6K, SquaredValuesAsWeightsGiveTheReference) {
  for (int row = 0; row < 2; ++row) {
    std::vector<float> x;
    std::vector<float> w;
    FixtureRow(row, &x, &w);
    for (int64_t j = 0; j < kFixtureN; ++j) w[j] = x[j] * x[j];
    std::vector<uint8_t> reference(*RowBytes(DType::kQ6_K, kFixtureN));
    QuantizeRow<DType::kQ6_K>(x.data(), reference.data(), kFixtureN);
    EXPECT_EQ(Hex(QuantizeWeighted(DType::kQ6_K, x, w)), Hex(reference)) << "row " << row;
  }
}

// Where every weight of a block is 0, ggml divides 0/0 and stores a NaN scale (llama-quantize then rejects the
// tensor in ggml_validate_row_data); pocketlm keeps those bytes too, so callers must not pass such a matrix row
// unchecked. IQ4_NL: one 32-block of zero weights; Q4_K: a whole super-block (make_qp_quants' sums are all 0).
TEST(WeightedQuantZeroWeights, AllZeroWeightBlocksGiveNaNScalesAsInGgml) {
  std::vector<float> x;
  std::vector<float> w;
  FixtureRow(0, &x, &w);
  for (int64_t j = 32; j < 64; ++j) w[j] = 0.f;
  const auto iq4 = QuantizeWeighted(DType::kIQ4_NL, x, w);
  const auto y_iq4 = Dequantize(DType::kIQ4_NL, iq4, kFixtureN);
  EXPECT_TRUE(std::isfinite(y_iq4[0]));
  EXPECT_TRUE(std::isnan(y_iq4[32]));
  for (int64_t j = 0; j < 256; ++j) w[j] = 0.f;
  const auto y_q4k = Dequantize(DType::kQ4_K, QuantizeWeighted(DType::kQ4_K, x, w), kFixtureN);
  EXPECT_TRUE(std::isnan(y_q4k[0]));
  EXPECT_TRUE(std::isfinite(y_q4k[256]));
}

}  // namespace
}  // namespace pocketlm::quant
