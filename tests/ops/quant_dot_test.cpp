// Quantized dot products (ops/quant_dot.h) on every Highway target compiled in and supported by this CPU:
//  - QuantMatMulRows against reference::QuantDot, exactly on grid data (power-of-two scales: every float step is
//    exact, so one wrong integer anywhere shows) and within a rounding bound on quantized random data;
//  - reference::QuantDot against dequantize(w) . dequantize(a) in double (the reference itself is right);
//  - QuantizeActivations bit-exact with quant::QuantizeRow of the vec-dot type.
// Odd sizes, 1..7 tokens, row ranges not starting at 0, accumulate on/off, rows at odd byte addresses.
// AVX3_DL (AVX512-VNNI) is among the targets tested: the build defines HWY_WANT_AVX3_DL everywhere.
#include "ops/quant_dot.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/quant_dot_internal.h"
#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

using quant::GetQuantTraits;

constexpr DType kTypes[] = {DType::kQ8_0,    DType::kQ4_0,   DType::kQ4_K,    DType::kQ6_K,   DType::kQ5_K,
                            DType::kQ3_K,    DType::kQ2_K,   DType::kQ5_0,    DType::kQ5_1,   DType::kQ4_1,
                            DType::kIQ4_NL,  DType::kIQ4_XS, DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S,
                            DType::kIQ3_XXS, DType::kIQ3_S,  DType::kIQ1_S,   DType::kIQ1_M};

// The lattice i-quants: every byte pattern is a valid block, so their test weights are random blocks with a sane
// super-scale (the tests do not depend on their quantizers).
constexpr DType kLatticeTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                                   DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};
bool IsLattice(DType t) {
  return std::find(std::begin(kLatticeTypes), std::end(kLatticeTypes), t) != std::end(kLatticeTypes);
}
// 9 and 19 tokens take the panel GEMM on x86 (32-value-block types, q4_K and q6_K from 8 tokens: full groups of
// 7 / 4 tokens and partial ones).
constexpr int64_t kNTokens[] = {1, 2, 3, 4, 5, 7, 9, 19};

// Row lengths: 1, 2, 3 and 11 blocks of 32, or 1, 2 and 5 super-blocks of 256.
std::vector<int64_t> Sizes(DType t) {
  if (GetDTypeInfo(t).block_size == 32) return {32, 64, 96, 352};
  return {256, 512, 1280};
}

size_t RowBytes(DType t, int64_t n) {
  const auto& tr = GetQuantTraits(t);
  return static_cast<size_t>(n) / GetDTypeInfo(tr.type).block_size * GetDTypeInfo(tr.type).type_size;
}

// Bytes starting one past a 64-byte boundary: blocks in GGUF files start at any address.
struct Bytes {
  std::vector<uint8_t> buf;
  uint8_t* p;
  explicit Bytes(size_t n) : buf(n + 128) {
    const auto base = reinterpret_cast<uintptr_t>(buf.data());
    p = buf.data() + (64 - base % 64) % 64 + 1;
  }
};

class QuantDotTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  // The AArch64 dotprod / i8mm kernels run ahead of Highway's when the CPU has them: off here, QuantDotArmTest
  // covers them.
  void SetUp() override {
    hwy::SetSupportedTargetsForTest(GetParam());
    SetArmDotLevelCap(ArmDotLevel::kNone);
  }
  void TearDown() override {
    hwy::SetSupportedTargetsForTest(0);
    SetArmDotLevelCap(ArmDotLevel::kI8mm);
  }
};

std::string TargetNameOf(const ::testing::TestParamInfo<int64_t>& p) {
  return hwy::TargetName(p.param);
}

// Weights (n_out rows, each padded by 3 bytes so rows start at varying addresses) and activations for one case.
struct Case {
  DType type;
  int64_t n, n_out, n_tokens;
  size_t w_row_bytes, act_row_bytes;
  Bytes w, act;
  Case(DType t, int64_t n_, int64_t n_out_, int64_t n_tokens_)
      : type(t),
        n(n_),
        n_out(n_out_),
        n_tokens(n_tokens_),
        w_row_bytes(RowBytes(t, n_) + 3),
        act_row_bytes(ActivationRowBytes(t, n_)),
        w(w_row_bytes * static_cast<size_t>(n_out_)),
        act(act_row_bytes * static_cast<size_t>(n_tokens_)) {}
  uint8_t* WRow(int64_t r) { return w.p + static_cast<size_t>(r) * w_row_bytes; }
  uint8_t* ARow(int64_t t) { return act.p + static_cast<size_t>(t) * act_row_bytes; }
};

void PutF16(uint8_t* p, float v) {
  const uint16_t h = F32ToF16(v);
  std::memcpy(p, &h, 2);
}

// The f16 super-scale of a lattice block: the first field, except IQ1_M's, spread over the top nibbles of its 4
// scale words (w[0]'s nibble lowest).
void PutLatticeD(DType t, uint8_t* blk, float v) {
  if (t != DType::kIQ1_M) return PutF16(blk, v);
  const uint16_t h = F32ToF16(v);
  uint8_t* scales = blk + offsetof(quant::BlockIQ1_M, scales);
  for (int k = 0; k < 4; ++k) {
    scales[2 * k + 1] = static_cast<uint8_t>((scales[2 * k + 1] & 0x0F) | ((h >> (4 * k)) & 0xF) << 4);
  }
}

// Grid data: random bytes for every quant and sub-block scale field (all bit patterns are valid blocks), f16
// super-scales 2^-4 (d) and 2^-5 (m / dmin), activations in [-2, 2] with scale 2^-3. Every integer block sum is
// below 2^24 in units of 2^-8, so each float operation of kernel and reference is exact and they must agree
// exactly, whatever the summation order.
void FillGrid(Case& c, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255), small(-2, 2);
  using namespace quant;  // NOLINT(google-build-using-namespace)
  const auto& tr = GetQuantTraits(c.type);
  size_t d_off = 0, m_off = 0;
  bool has_m = false;
  switch (c.type) {
    case DType::kQ4_1: has_m = true, m_off = offsetof(BlockQ4_1, m); break;
    case DType::kQ5_1: has_m = true, m_off = offsetof(BlockQ5_1, m); break;
    case DType::kQ2_K: d_off = offsetof(BlockQ2_K, d), has_m = true, m_off = offsetof(BlockQ2_K, dmin); break;
    case DType::kQ3_K: d_off = offsetof(BlockQ3_K, d); break;
    case DType::kQ4_K: has_m = true, m_off = offsetof(BlockQ4_K, dmin); break;
    case DType::kQ5_K: has_m = true, m_off = offsetof(BlockQ5_K, dmin); break;
    case DType::kQ6_K: d_off = offsetof(BlockQ6_K, d); break;
    default: break;  // d first in every other block
  }
  const int64_t nb = c.n / GetDTypeInfo(tr.type).block_size;
  for (int64_t r = 0; r < c.n_out; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = c.WRow(r) + static_cast<size_t>(b) * GetDTypeInfo(tr.type).type_size;
      for (size_t i = 0; i < GetDTypeInfo(tr.type).type_size; ++i) blk[i] = static_cast<uint8_t>(byte(rng));
      if (IsLattice(c.type)) {
        PutLatticeD(c.type, blk, 0x1p-4f);
        continue;
      }
      PutF16(blk + d_off, 0x1p-4f);
      if (has_m) PutF16(blk + m_off, 0x1p-5f);
    }
  }
  const DType at = GetDTypeInfo(tr.type).vec_dot_type;
  const int64_t qk = at == DType::kQ8_K ? kQK_K : 32;
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    for (int64_t b = 0; b < c.n / qk; ++b) {
      int8_t qs[kQK_K];
      int sum = 0;
      for (int64_t i = 0; i < qk; ++i) sum += qs[i] = static_cast<int8_t>(small(rng));
      uint8_t* blk = c.ARow(t) + static_cast<size_t>(b) * GetDTypeInfo(at).type_size;
      if (at == DType::kQ8_K) {
        BlockQ8_K y;
        y.d = 0x1p-3f;
        std::memcpy(y.qs, qs, kQK_K);
        for (int j = 0; j < 16; ++j) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += qs[16 * j + l];
          y.bsums[j] = static_cast<int16_t>(s);
        }
        std::memcpy(blk, &y, sizeof(y));
      } else {
        PutF16(blk, 0x1p-3f);
        const size_t qs_off = at == DType::kQ8_1 ? 4 : 2;
        if (at == DType::kQ8_1) PutF16(blk + 2, static_cast<float>(sum) * 0x1p-3f);
        std::memcpy(blk + qs_off, qs, 32);
      }
    }
  }
}

// Quantized random data: weights N(0, 1) through quant::QuantizeRow, activations through QuantizeActivations.
// Also returns the dequantized values (rows of n) for the error bounds.
void FillRandom(Case& c, std::mt19937& rng, std::vector<float>* wdq, std::vector<float>* adq) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  const auto& tr = GetQuantTraits(c.type);
  const auto n = static_cast<size_t>(c.n);
  std::vector<float> x(n);
  std::vector<uint8_t> tmp(RowBytes(c.type, c.n) + 64);
  wdq->resize(n * static_cast<size_t>(c.n_out));
  const size_t block_bytes = GetDTypeInfo(c.type).type_size;
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.01f, 0.02f);
  for (int64_t r = 0; r < c.n_out; ++r) {
    if (IsLattice(c.type)) {
      for (size_t i = 0; i < RowBytes(c.type, c.n); ++i) tmp[i] = static_cast<uint8_t>(byte(rng));
      for (size_t b = 0; b < RowBytes(c.type, c.n) / block_bytes; ++b) {
        PutLatticeD(c.type, tmp.data() + b * block_bytes, scale(rng));
      }
    } else {
      for (auto& v : x) v = g(rng);
      tr.quantize_row(x.data(), tmp.data(), c.n);
    }
    std::memcpy(c.WRow(r), tmp.data(), RowBytes(c.type, c.n));
    tr.dequantize_row(tmp.data(), wdq->data() + static_cast<size_t>(r) * n, c.n);
  }
  std::vector<float> xa(n * static_cast<size_t>(c.n_tokens));
  for (auto& v : xa) v = g(rng) * 3.0f;
  ASSERT_EQ(QuantizeActivations(c.type, xa.data(), c.n_tokens, c.n, c.act.p), c.act_row_bytes);
  adq->resize(xa.size());
  const auto& at = GetQuantTraits(GetDTypeInfo(tr.type).vec_dot_type);
  std::vector<uint8_t> arow(c.act_row_bytes);
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    std::memcpy(arow.data(), c.ARow(t), c.act_row_bytes);  // aligned copy for the struct-based dequantizer
    at.dequantize_row(arow.data(), adq->data() + static_cast<size_t>(t) * n, c.n);
  }
}

// S = sum_i (|w_i| + M) |a_i|, M the largest |w| of the weight's block: bounds the magnitude of every partial sum
// of kernel and reference, including the separate min terms (|m|-parts are at most M for data from the reference
// quantizers, whose smallest level is attained in each block).
double Magnitude(DType t, const float* w, const float* a, int64_t n) {
  const int64_t qk = GetDTypeInfo(t).block_size;
  double s = 0;
  for (int64_t b = 0; b < n; b += qk) {
    double m = 0;
    for (int64_t i = b; i < b + qk; ++i) m = std::max(m, std::fabs(double{w[i]}));
    for (int64_t i = b; i < b + qk; ++i) s += (std::fabs(double{w[i]}) + m) * std::fabs(double{a[i]});
  }
  return s;
}

// Float rounding budget of a dot product of n values: both kernel and reference add at most n / 16 + 8 rounded
// partials (iq4_xs: one per 32-value sub-block; 8 lanes and min terms for the k-quants), each rounding off at most
// 2^-24 of S; doubled for the two sides.
double RoundingBound(int64_t n, double magnitude) {
  return static_cast<double>(n / 16 + 8) * 0x1p-23 * magnitude;
}

// interleaved: the q4_0 / q5_0 / q8_0 / q4_K / q6_K rows copied contiguously, interleaved 16 at a time
// (tensor/quant/interleave.h) and multiplied by QuantMatMulRowsInterleaved, over row ranges that start and end inside
// units too.
void RunAndCompare(Case& c, bool exact, const std::vector<float>& wdq, const std::vector<float>& adq, std::mt19937& rng,
                   bool interleaved = false) {
  const int64_t y_stride = c.n_out + 2;
  const size_t rb = RowBytes(c.type, c.n);
  std::vector<uint8_t> x16;
  QuantActs prepared;
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, c.n_out}, {1, c.n_out - 1}};
  if (interleaved) {
    x16.resize(rb * static_cast<size_t>(c.n_out));
    for (int64_t r = 0; r < c.n_out; ++r) std::memcpy(x16.data() + static_cast<size_t>(r) * rb, c.WRow(r), rb);
    quant::InterleaveRows(c.type, x16.data(), rb, c.n_out);
    PrepareQuantActs(c.type, c.act.p, c.act_row_bytes, c.n_tokens, c.n, &prepared);
    ranges.insert(ranges.end(), {{16, c.n_out}, {0, 16}, {3, std::min<int64_t>(c.n_out, 21)}});
    if (c.n_out % 16 != 0) ranges.push_back({c.n_out - 3, c.n_out});  // inside the plain tail rows only
  }
  for (bool accumulate : {false, true}) {
    for (auto [r0, r1] : ranges) {
      std::uniform_int_distribution<int> init(-50, 50);
      std::vector<float> y(static_cast<size_t>(c.n_tokens * y_stride)), y0;
      for (auto& v : y) v = static_cast<float>(init(rng));
      y0 = y;
      if (interleaved) {
        QuantMatMulRowsInterleaved(prepared, x16.data(), rb, c.n_out, y.data(), y_stride, accumulate, r0, r1);
      } else {
        QuantMatMulRows(c.type, c.w.p, c.w_row_bytes, c.n, c.act.p, c.act_row_bytes, c.n_tokens, y.data(), y_stride,
                        accumulate, r0, r1);
      }
      for (int64_t t = 0; t < c.n_tokens; ++t) {
        for (int64_t r = 0; r < y_stride; ++r) {
          const size_t k = static_cast<size_t>(t * y_stride + r);
          const std::string where = std::string(DTypeName(c.type)) + " n=" + std::to_string(c.n) +
                                    " tokens=" + std::to_string(c.n_tokens) + " rows=[" + std::to_string(r0) + "," +
                                    std::to_string(r1) + ") acc=" + std::to_string(accumulate) +
                                    " t=" + std::to_string(t) + " r=" + std::to_string(r);
          if (r < r0 || r >= r1) {
            ASSERT_EQ(y[k], y0[k]) << where << ": outside the row range, must be untouched";
            continue;
          }
          const float dot = reference::QuantDot(c.type, c.WRow(r), c.ARow(t), c.n);
          const float want = accumulate ? y0[k] + dot : dot;
          if (exact) {
            ASSERT_EQ(y[k], want) << where;
          } else {
            const auto n = static_cast<size_t>(c.n);
            const double mag = Magnitude(c.type, wdq.data() + static_cast<size_t>(r) * n,
                                         adq.data() + static_cast<size_t>(t) * n, c.n);
            const double tol = RoundingBound(c.n, mag) + 0x1p-23 * (std::fabs(want) + std::fabs(y0[k]));
            ASSERT_NEAR(y[k], want, tol) << where;
          }
        }
      }
    }
  }
}

void CheckExactOnGridData() {
  std::mt19937 rng(1);
  for (DType type : kTypes) {
    for (int64_t n : Sizes(type)) {
      for (int64_t n_tokens : kNTokens) {
        Case c(type, n, 5, n_tokens);
        FillGrid(c, rng);
        RunAndCompare(c, true, {}, {}, rng);
      }
    }
  }
}

void CheckRandomDataWithinRoundingBound() {
  std::mt19937 rng(2);
  for (DType type : kTypes) {
    for (int64_t n : Sizes(type)) {
      for (int64_t n_tokens : kNTokens) {
        Case c(type, n, 5, n_tokens);
        std::vector<float> wdq, adq;
        FillRandom(c, rng, &wdq, &adq);
        RunAndCompare(c, false, wdq, adq, rng);
      }
    }
    // Grid data has the same scales in every block, so only data like this shows a scale taken from the wrong row,
    // token or block; 37 rows cross the kernels' tiles of 16 rows (and of 2 and 4 rows) with remainders.
    for (int64_t n_tokens : {1, 6, 9}) {
      Case c(type, Sizes(type)[1], 37, n_tokens);
      std::vector<float> wdq, adq;
      FillRandom(c, rng, &wdq, &adq);
      RunAndCompare(c, false, wdq, adq, rng);
    }
  }
}

// Prefill-sized token counts: QuantMatMulRows widens the activations of ~256 KiB of tokens at a time (84 tokens of
// 1536 values, 100 of 1280), so these runs cross token-block boundaries and end with a partial group of 4.
void CheckManyTokensExactOnGridData() {
  std::mt19937 rng(5);
  for (DType type :
       {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kIQ4_XS, DType::kIQ2_XS, DType::kIQ1_M}) {
    for (auto [n, n_tokens] : {std::pair<int64_t, int64_t>{1536, 90}, {1280, 103}}) {
      Case c(type, n, 3, n_tokens);
      FillGrid(c, rng);
      RunAndCompare(c, true, {}, {}, rng);
    }
  }
}

// Many rows: the 32-value-block byte path (x86) runs tiles of 4 rows x up to 4 tokens over row tiles of 16, with
// per-row scales gathered 8 blocks at a time; from 8 tokens on, panels of 32 (AVX-512) or 8 (AVX2) rows packed
// 4 rows at a time. 37 rows and 11 blocks leave remainders of each, and the token counts include partial token
// groups of both paths.
void CheckManyRowsExactOnGridData() {
  std::mt19937 rng(6);
  for (DType type : {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kIQ4_NL}) {
    for (int64_t n_tokens : {1, 4, 6, 9, 21}) {
      Case c(type, 352, 37, n_tokens);
      FillGrid(c, rng);
      RunAndCompare(c, true, {}, {}, rng);
    }
  }
  // The k-quant panels (q4_K: 8 groups of 32 per super-block with mins, q6_K: 16 groups of 16 with offset 32), and
  // the k-quants of the AArch64 SDOT kernels (q5_K too).
  for (DType type : {DType::kQ4_K, DType::kQ6_K, DType::kQ5_K}) {
    for (int64_t n_tokens : {9, 30}) {
      Case c(type, 768, 37, n_tokens);
      FillGrid(c, rng);
      RunAndCompare(c, true, {}, {}, rng);
    }
  }
}

TEST_P(QuantDotTargetTest, ExactOnGridData) {
  CheckExactOnGridData();
}
TEST_P(QuantDotTargetTest, RandomDataWithinRoundingBound) {
  CheckRandomDataWithinRoundingBound();
}
TEST_P(QuantDotTargetTest, ManyTokensExactOnGridData) {
  CheckManyTokensExactOnGridData();
}
TEST_P(QuantDotTargetTest, ManyRowsExactOnGridData) {
  CheckManyRowsExactOnGridData();
}

// The AArch64 kernels (ops/quant_dot_arm.h) at each level this CPU has: SDOT alone, then SDOT + SMMLA (pairs of rows
// x pairs of tokens, from 2 tokens on). None on other CPUs.
class QuantDotArmTest : public ::testing::TestWithParam<ArmDotLevel> {
 protected:
  void SetUp() override { SetArmDotLevelCap(GetParam()); }
  void TearDown() override { SetArmDotLevelCap(ArmDotLevel::kI8mm); }
};

std::vector<ArmDotLevel> ArmLevels() {
  std::vector<ArmDotLevel> levels;
  for (ArmDotLevel l : {ArmDotLevel::kDotProd, ArmDotLevel::kI8mm}) {
    if (DetectedArmDotLevel() >= l) levels.push_back(l);
  }
  return levels;
}

TEST_P(QuantDotArmTest, ExactOnGridData) {
  ASSERT_EQ(ActiveArmDotLevel(), GetParam());
  CheckExactOnGridData();
}
TEST_P(QuantDotArmTest, RandomDataWithinRoundingBound) {
  CheckRandomDataWithinRoundingBound();
}
TEST_P(QuantDotArmTest, ManyTokensExactOnGridData) {
  CheckManyTokensExactOnGridData();
}
TEST_P(QuantDotArmTest, ManyRowsExactOnGridData) {
  CheckManyRowsExactOnGridData();
}

INSTANTIATE_TEST_SUITE_P(quant_dot, QuantDotArmTest, ::testing::ValuesIn(ArmLevels()),
                         [](const ::testing::TestParamInfo<ArmDotLevel>& p) {
                           return std::string(p.param == ArmDotLevel::kI8mm ? "I8MM" : "DOTPROD");
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(QuantDotArmTest);

// q4_0 / q5_0 / q8_0 / q4_K / q6_K rows interleaved 16 at a time (the decode kernels' layout, made at model load on
// AVX-512 CPUs): 16, 37 and 70 rows (whole units, then plain tail rows), decode (1, 2, 5 tokens) and panel (9, 21)
// token counts. Grid data checks every integer exactly; random data (varying block scales) checks each row gets its own
// scales. Targets without interleaved kernels for a type (InterleavedIsFaster false: everything but AVX-512 here)
// only deinterleave and run the plain kernels, which the other tests cover: one shape each (the full set took 3
// minutes per emulated SVE target in CI).
TEST_P(QuantDotTargetTest, InterleavedMatchesReference) {
  std::mt19937 rng(8);
  for (DType type : {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const bool k_quant = GetDTypeInfo(type).block_size == 256;
    const bool kernels = InterleavedIsFaster(type);
    const std::vector<int64_t> sizes = k_quant ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 352};
    for (int64_t n : kernels ? sizes : std::vector<int64_t>{sizes.back()}) {
      for (int64_t n_out : kernels ? std::vector<int64_t>{16, 37, 70} : std::vector<int64_t>{37}) {
        for (int64_t n_tokens : kernels ? std::vector<int64_t>{1, 2, 5, 9, 21} : std::vector<int64_t>{1, 9}) {
          Case grid(type, n, n_out, n_tokens);
          FillGrid(grid, rng);
          RunAndCompare(grid, true, {}, {}, rng, /*interleaved=*/true);
          Case random(type, n, n_out, n_tokens);
          std::vector<float> wdq, adq;
          FillRandom(random, rng, &wdq, &adq);
          RunAndCompare(random, false, wdq, adq, rng, /*interleaved=*/true);
        }
      }
    }
  }
}

// Rows that exercise the rounding rules: an all-zero block, exact halves (roundf rounds them away from zero,
// nearest_int to even), a negative extreme value, then random values.
std::vector<float> ActivationTestData(int64_t n, int64_t n_tokens, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n * n_tokens));
  for (auto& v : x) v = g(rng);
  for (int64_t i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 0.0f;
  if (n >= 512) {
    for (int64_t i = 256; i < 512; ++i) x[static_cast<size_t>(i)] = 0.0f;
  }
  // Second row: max |x| = 127 with scale 1, so x * id hits the halves exactly; the extreme is negative.
  const size_t o = static_cast<size_t>(n);
  for (int64_t i = 0; i < std::min<int64_t>(n, 256); ++i) {
    x[o + static_cast<size_t>(i)] = static_cast<float>(i % 64) - 31.5f;
  }
  x[o + 5] = -127.0f;
  if (n > 32) x[o + 40] = -127.0f;
  return x;
}

TEST_P(QuantDotTargetTest, QuantizeActivationsBitExact) {
  std::mt19937 rng(3);
  for (DType wt : {DType::kQ8_0, DType::kQ4_1, DType::kQ4_K}) {
    const DType at = GetDTypeInfo(wt).vec_dot_type;
    for (int64_t n : Sizes(wt)) {
      const int64_t n_tokens = 3;
      const std::vector<float> x = ActivationTestData(n, n_tokens, rng);
      const size_t row_bytes = ActivationRowBytes(wt, n);
      ASSERT_EQ(row_bytes, RowBytes(at, n));
      Bytes got(row_bytes * n_tokens);
      ASSERT_EQ(QuantizeActivations(wt, x.data(), n_tokens, n, got.p), row_bytes);
      std::vector<uint8_t> want(row_bytes);
      for (int64_t t = 0; t < n_tokens; ++t) {
        GetQuantTraits(at).quantize_row(x.data() + t * n, want.data(), n);
        for (size_t i = 0; i < row_bytes; ++i) {
          ASSERT_EQ(got.p[static_cast<size_t>(t) * row_bytes + i], want[i])
              << DTypeName(at) << " n=" << n << " token " << t << " byte " << i;
        }
      }
    }
  }
}

// The prefix makes `ctest -R quant_dot` select these tests.
INSTANTIATE_TEST_SUITE_P(quant_dot, QuantDotTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         TargetNameOf);

// Target-independent tests, parameterized only to carry the quant_dot prefix.
class QuantDotScalarTest : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(quant_dot, QuantDotScalarTest, ::testing::Values(0));

// The reference against the exact value of its inputs: dequantize both rows and take the dot product in double.
// Integer sums are exact, so the only differences are the f32 roundings of dequantization (2^-24 of S) and of the
// reference's own float steps (RoundingBound, whose factor 2 covers both), plus Q8_1's f16 sum for q4_1/q5_1.
TEST_P(QuantDotScalarTest, ReferenceMatchesDequantizedDotInDouble) {
  std::mt19937 rng(4);
  for (DType type : kTypes) {
    for (int64_t n : Sizes(type)) {
      Case c(type, n, 3, 2);
      std::vector<float> wdq, adq;
      FillRandom(c, rng, &wdq, &adq);
      for (int64_t r = 0; r < c.n_out; ++r) {
        for (int64_t t = 0; t < c.n_tokens; ++t) {
          const float* w = wdq.data() + r * n;
          const float* a = adq.data() + t * n;
          double exact = 0;
          for (int64_t i = 0; i < n; ++i) exact += double{w[i]} * a[i];
          // Q8_1 carries d * sum(q) rounded to f16 (relative error 2^-11) for the min term m * s of q4_1/q5_1.
          double s_error = 0;
          if (GetDTypeInfo(type).vec_dot_type == DType::kQ8_1) {
            for (int64_t b = 0; b < n; b += 32) {
              double m = 0, sum = 0;
              for (int64_t i = b; i < b + 32; ++i) m = std::max(m, std::fabs(double{w[i]})), sum += a[i];
              s_error += m * std::fabs(sum) * 0x1p-11;
            }
          }
          const float got = reference::QuantDot(type, c.WRow(r), c.ARow(t), n);
          ASSERT_NEAR(got, exact, RoundingBound(n, Magnitude(type, w, a, n)) + s_error)
              << DTypeName(type) << " n=" << n << " row " << r << " token " << t;
        }
      }
    }
  }
}

// The interleaved layouts are permutations of the GGUF bytes and bits (q8_0 codes xor 0x80, q5_0's 5th bits
// regrouped): whole tensors and single rows come back exactly, and the rows after the last whole unit stay put.
TEST_P(QuantDotScalarTest, InterleaveRoundTrips) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> byte(0, 255);
  for (DType type : {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const size_t rb = 3 * GetDTypeInfo(type).type_size;
    const int64_t n_out = 37;
    std::vector<uint8_t> rows(rb * n_out), x16, back(rb * 16), row(rb);
    for (auto& b : rows) b = static_cast<uint8_t>(byte(rng));
    x16 = rows;
    quant::InterleaveRows(type, x16.data(), rb, n_out);
    EXPECT_NE(0, std::memcmp(x16.data(), rows.data(), rb * 32));
    EXPECT_EQ(0, std::memcmp(x16.data() + rb * 32, rows.data() + rb * 32, rb * 5));
    for (int u = 0; u < 2; ++u) {
      quant::DeinterleaveUnit(type, x16.data() + rb * 16 * u, rb, back.data());
      EXPECT_EQ(0, std::memcmp(back.data(), rows.data() + rb * 16 * u, rb * 16)) << "unit " << u;
      for (int i = 0; i < 16; ++i) {
        quant::DeinterleaveRow(type, x16.data() + rb * 16 * u, rb, i, row.data());
        EXPECT_EQ(0, std::memcmp(row.data(), rows.data() + rb * (16 * u + i), rb)) << "row " << 16 * u + i;
      }
    }
  }
}

// The kernels' branch-free f16 scale conversion against tensor/half.h on all 65536 encodings.
TEST_P(QuantDotScalarTest, LoadF16MatchesF16ToF32) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    uint8_t b[2];
    std::memcpy(b, &h, 2);
    const float want = F16ToF32(h), got = quant_dot_internal::LoadF16(b);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << i;
    } else {
      ASSERT_EQ(FloatToBits(got), FloatToBits(want)) << std::hex << i;
    }
  }
}

TEST_P(QuantDotScalarTest, SupportedTypesAndRowBytes) {
  for (DType t : kTypes) EXPECT_TRUE(HasQuantDot(t)) << DTypeName(t);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_1, DType::kQ8_K, DType::kTQ1_0}) {
    EXPECT_FALSE(HasQuantDot(t)) << DTypeName(t);
    EXPECT_EQ(ActivationRowBytes(t, 256), 0u);
  }
  EXPECT_EQ(ActivationRowBytes(DType::kQ4_0, 64), 2u * 34u);
  EXPECT_EQ(ActivationRowBytes(DType::kQ5_1, 64), 2u * 36u);
  EXPECT_EQ(ActivationRowBytes(DType::kQ6_K, 512), 2u * 292u);
  EXPECT_EQ(ActivationRowBytes(DType::kIQ4_XS, 256), 292u);
  // Empty rows: every dot product is 0.
  float y[2] = {5.0f, 5.0f};
  const uint8_t none = 0;
  QuantMatMulRows(DType::kQ4_K, &none, 0, 0, &none, 0, 1, y, 2, false, 0, 2);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
}

}  // namespace
}  // namespace pocketlm
