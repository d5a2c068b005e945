// MatMulWeightsT (Highway, dynamic dispatch) against reference::MatMulWeightsT on every target compiled into the
// binary and supported by this CPU, at odd sizes, misaligned pointers, with and without accumulation and
// threads.
#include "ops/matmul.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops_test_util.h"
#include "tensor/half.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

// Runs each test once per Highway target; resets the target mock afterwards.
class MatMulTargetTest : public testutil::HwyTargetTest {};
using testutil::TargetNameOf;

// Weight storage for a (n_out, n_in) matrix in `type`, starting `skew` elements into its buffer so that SIMD
// loads of the rows are misaligned when skew > 0.
struct Weights {
  std::vector<uint8_t> buf;
  TensorView view;
};

Weights MakeWeights(DType type, int64_t n_in, int64_t n_out, const std::vector<float>& values, int skew) {
  const size_t es = type == DType::kF32 ? 4 : 2;
  Weights w;
  w.buf.resize((static_cast<size_t>(n_in * n_out) + static_cast<size_t>(skew)) * es + 64);
  // Start from a 64-byte boundary, then skew.
  auto base = reinterpret_cast<uintptr_t>(w.buf.data());
  const size_t pad = (64 - base % 64) % 64;
  uint8_t* p = w.buf.data() + pad + static_cast<size_t>(skew) * es;
  for (size_t i = 0; i < values.size(); ++i) {
    if (type == DType::kF32) {
      std::memcpy(p + 4 * i, &values[i], 4);
    } else {
      const uint16_t h = type == DType::kF16 ? F32ToF16(values[i]) : F32ToBF16(values[i]);
      std::memcpy(p + 2 * i, &h, 2);
    }
  }
  w.view.type = type;
  w.view.ne[0] = n_in;
  w.view.ne[1] = n_out;
  w.view.data = p;
  w.view.nbytes = values.size() * es;
  return w;
}

// A float buffer whose first element sits `skew` floats past a 64-byte boundary.
struct Floats {
  std::vector<float> buf;
  float* p;
  Floats(size_t n, int skew) : buf(n + 32) {
    auto base = reinterpret_cast<uintptr_t>(buf.data());
    p = buf.data() + ((64 - base % 64) % 64) / 4 + static_cast<size_t>(skew);
  }
};

constexpr DType kTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr int64_t kNIn[] = {1, 3, 17, 64, 255, 1000};
constexpr int64_t kNOut[] = {1, 5, 33};
constexpr int64_t kNTokens[] = {1, 2, 3, 4, 5, 9};

// Values on a coarse grid (multiples of 1/8 in [-1, 1] for W, of 1/4 in [-2, 2] for x): every product and every
// partial sum is exact in f32 (|sum| <= 2000 in steps of 1/32 needs 16 bits), so any correct kernel gives the
// reference result exactly, whatever its summation order. A dropped, doubled or misplaced term cannot hide.
TEST_P(MatMulTargetTest, ExactOnGridValues) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> w8(-8, 8), x8(-8, 8);
  ThreadPool pool1(1), pool3(3);
  for (DType type : kTypes) {
    for (int64_t n_in : kNIn) {
      for (int64_t n_out : kNOut) {
        std::vector<float> wv(static_cast<size_t>(n_in * n_out));
        for (auto& v : wv) v = static_cast<float>(w8(rng)) / 8.0f;
        for (int skew : {0, 1}) {
          const Weights w = MakeWeights(type, n_in, n_out, wv, skew);
          for (int64_t n_tokens : kNTokens) {
            const int64_t y_stride = n_out + 3;
            Floats x(static_cast<size_t>(n_tokens * n_in), skew);
            for (int64_t i = 0; i < n_tokens * n_in; ++i) x.p[i] = static_cast<float>(x8(rng)) / 4.0f;
            for (bool accumulate : {false, true}) {
              for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool3}) {
                const size_t ny = static_cast<size_t>(n_tokens * y_stride);
                Floats y(ny, skew), want(ny, 0);
                for (size_t i = 0; i < ny; ++i) y.p[i] = want.p[i] = static_cast<float>(x8(rng));
                MatMulWeightsT(w.view, x.p, n_tokens, y.p, y_stride, accumulate, pool);
                reference::MatMulWeightsT(w.view, x.p, n_tokens, want.p, y_stride, accumulate);
                for (size_t i = 0; i < ny; ++i) {
                  ASSERT_EQ(y.p[i], want.p[i])
                      << DTypeName(type) << " n_in=" << n_in << " n_out=" << n_out << " n_tokens=" << n_tokens
                      << " skew=" << skew << " acc=" << accumulate << " threads=" << (pool ? pool->size() : 0)
                      << " at token " << i / static_cast<size_t>(y_stride) << " column "
                      << i % static_cast<size_t>(y_stride)
                      << (i % static_cast<size_t>(y_stride) >= static_cast<size_t>(n_out)
                              ? " (padding: must be untouched)"
                              : "");
                }
              }
            }
          }
        }
      }
    }
  }
}

// Random f32 values: results differ from the double-accumulating reference only by rounding. Tolerance: the
// classic forward error bound of a float dot product, |err| <= gamma_n * sum_i |w_i x_i| with
// gamma_n ~ n * 2^-24, taken as (n_in + 2) * 2^-23 (a factor 2 of slack) plus one rounding of the accumulated
// output, 2^-23 * |y|. Typical errors are far smaller (~ sqrt(n) * 2^-24).
TEST_P(MatMulTargetTest, RandomValuesWithinRoundingBound) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  ThreadPool pool3(3);
  for (DType type : kTypes) {
    for (int64_t n_in : kNIn) {
      for (int64_t n_out : kNOut) {
        std::vector<float> wv(static_cast<size_t>(n_in * n_out));
        for (auto& v : wv) v = u(rng) * 4.0f;
        const Weights w = MakeWeights(type, n_in, n_out, wv, 1);
        std::vector<float> wdq(wv.size());  // what the kernel sees after f16/bf16 rounding
        for (int64_t o = 0; o < n_out; ++o) reference::DequantizeRow(w.view, o, wdq.data() + o * n_in);
        for (int64_t n_tokens : kNTokens) {
          Floats x(static_cast<size_t>(n_tokens * n_in), 1);
          for (int64_t i = 0; i < n_tokens * n_in; ++i) x.p[i] = u(rng);
          for (bool accumulate : {false, true}) {
            const size_t ny = static_cast<size_t>(n_tokens * n_out);
            std::vector<float> y(ny), want(ny), y0(ny);
            for (size_t i = 0; i < ny; ++i) y[i] = want[i] = y0[i] = u(rng);
            MatMulWeightsT(w.view, x.p, n_tokens, y.data(), n_out, accumulate, &pool3);
            reference::MatMulWeightsT(w.view, x.p, n_tokens, want.data(), n_out, accumulate);
            for (int64_t t = 0; t < n_tokens; ++t) {
              for (int64_t o = 0; o < n_out; ++o) {
                double abs_sum = 0;
                for (int64_t i = 0; i < n_in; ++i) abs_sum += std::fabs(double{wdq[o * n_in + i]} * x.p[t * n_in + i]);
                const size_t k = static_cast<size_t>(t * n_out + o);
                const double tol = (n_in + 2) * 0x1p-23 * (abs_sum + (accumulate ? std::fabs(y0[k]) : 0.0)) +
                                   0x1p-23 * std::fabs(want[k]);
                ASSERT_NEAR(y[k], want[k], tol) << DTypeName(type) << " n_in=" << n_in << " n_out=" << n_out
                                                << " n_tokens=" << n_tokens << " acc=" << accumulate;
              }
            }
          }
        }
      }
    }
  }
}

// The prefill GEMM's shapes (>= 4 tokens: panels of 2N rows x tiles of 12 or 6 tokens, inner chunks of 128): row
// counts that end inside a panel of 8, 16 or 32 rows, token counts that take every tile width (with 12-token tiles
// 7 = 4 + 2 + 1, 13 = 12 + 1, 22 = 12 + 8 + 2, 32 = 12 + 12 + 8; with 6-token tiles 7 = 6 + 1, 22 = 3 x 6 + 4,
// 32 = 5 x 6 + 2), an inner size of two chunks and a remainder, and row ranges that start and end inside a panel
// (MatMulWeightsTRows). Grid values: the result must equal the reference exactly, and the columns outside the
// range must stay untouched.
TEST_P(MatMulTargetTest, PanelShapesExactOnGridValues) {
  std::mt19937 rng(19);
  std::uniform_int_distribution<int> g(-8, 8);
  ThreadPool pool2(2);
  for (DType type : kTypes) {
    for (int64_t n_in : {300}) {
      for (int64_t n_out : {31, 33, 70}) {
        std::vector<float> wv(static_cast<size_t>(n_in * n_out));
        for (auto& v : wv) v = static_cast<float>(g(rng)) / 8.0f;
        const Weights w = MakeWeights(type, n_in, n_out, wv, 1);
        for (int64_t n_tokens : {7, 13, 22, 32}) {
          const int64_t y_stride = n_out + 5;
          std::vector<float> x(static_cast<size_t>(n_tokens * n_in));
          for (auto& v : x) v = static_cast<float>(g(rng)) / 4.0f;
          const std::pair<int64_t, int64_t> ranges[] = {{0, n_out}, {3, n_out - 2}, {n_out / 2, n_out}};
          for (bool accumulate : {false, true}) {
            for (const auto& [r0, r1] : ranges) {
              std::vector<float> y(static_cast<size_t>(n_tokens * y_stride));
              for (auto& v : y) v = static_cast<float>(g(rng));
              const std::vector<float> before = y;
              std::vector<float> want = y;
              if (r0 == 0 && r1 == n_out) {
                MatMulWeightsT(w.view, x.data(), n_tokens, y.data(), y_stride, accumulate, &pool2);
              } else {
                MatMulWeightsTRows(w.view, x.data(), n_tokens, y.data(), y_stride, accumulate, r0, r1);
              }
              reference::MatMulWeightsT(w.view, x.data(), n_tokens, want.data(), y_stride, accumulate);
              for (int64_t t = 0; t < n_tokens; ++t) {
                for (int64_t o = 0; o < y_stride; ++o) {
                  const size_t i = static_cast<size_t>(t * y_stride + o);
                  const float expect = o >= r0 && o < r1 ? want[i] : before[i];
                  ASSERT_EQ(y[i], expect)
                      << DTypeName(type) << " n_in=" << n_in << " n_out=" << n_out << " n_tokens=" << n_tokens
                      << " rows [" << r0 << ", " << r1 << ") acc=" << accumulate << " token " << t << " row " << o;
                }
              }
            }
          }
        }
      }
    }
  }
}

// The SIMD f16/bf16 -> f32 conversion must agree bit for bit with tensor/half.h on every one of the 65536
// encodings (subnormals, infinities, NaNs), in one row long enough to take the vector path.
TEST_P(MatMulTargetTest, DequantizeRowMatchesScalarOnAllEncodings) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (DType type : {DType::kF16, DType::kBF16}) {
    TensorView v;
    v.type = type;
    v.ne[0] = 65535;  // odd length: vector body and scalar tail
    v.ne[1] = 1;
    v.data = reinterpret_cast<const uint8_t*>(all.data() + 1);  // misaligned by one element
    v.nbytes = 65535 * 2;
    std::vector<float> got(65535), want(65535);
    DequantizeRow(v, 0, got.data());
    for (size_t i = 0; i < 65535; ++i) {
      const uint16_t h = all[i + 1];
      want[i] = type == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
      if (std::isnan(want[i])) {
        ASSERT_TRUE(std::isnan(got[i])) << DTypeName(type) << " 0x" << std::hex << h;
      } else {
        ASSERT_EQ(FloatToBits(got[i]), FloatToBits(want[i])) << DTypeName(type) << " 0x" << std::hex << h;
      }
    }
  }
}

// MatMulTransposedAccumulateRows (the LoRA B step over B^T): grid values make every sum exact whatever the
// rounding of the multiply-adds, so the SIMD result must equal the reference bit for bit, for every row range
// (ranges that start and end inside a vector and a 64-column block included); columns outside [o0, o1) and the
// stride padding must stay untouched.
TEST_P(MatMulTargetTest, TransposedAccumulateExactOnGridValues) {
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> g(-8, 8);
  for (DType type : kTypes) {
    for (int64_t rank : {1, 4, 16, 33}) {
      for (int64_t n_out : {1, 7, 64, 130}) {
        std::vector<float> wv(static_cast<size_t>(rank * n_out));
        for (auto& v : wv) v = static_cast<float>(g(rng)) / 8.0f;
        const Weights wt = MakeWeights(type, n_out, rank, wv, 1);  // (rank, n_out): ne = [n_out, rank]
        for (int64_t n_tokens : {1, 3, 5}) {
          const int64_t a_stride = rank + 2, y_stride = n_out + 3;
          std::vector<float> a(static_cast<size_t>(n_tokens * a_stride));
          for (auto& v : a) v = static_cast<float>(g(rng)) / 4.0f;
          const std::pair<int64_t, int64_t> ranges[] = {{0, n_out}, {n_out / 3, n_out - n_out / 5}, {n_out - 1, n_out}};
          for (const auto& [o0, o1] : ranges) {
            std::vector<float> y(static_cast<size_t>(n_tokens * y_stride));
            for (auto& v : y) v = static_cast<float>(g(rng));
            std::vector<float> want = y;
            MatMulTransposedAccumulateRows(wt.view, a.data(), n_tokens, a_stride, y.data(), y_stride, o0, o1);
            reference::MatMulTransposedAccumulateRows(wt.view, a.data(), n_tokens, a_stride, want.data(), y_stride, o0,
                                                      o1);
            for (size_t i = 0; i < y.size(); ++i) {
              ASSERT_EQ(y[i], want[i]) << DTypeName(type) << " rank=" << rank << " n_out=" << n_out
                                       << " n_tokens=" << n_tokens << " rows [" << o0 << ", " << o1 << ") at " << i;
            }
          }
        }
      }
    }
  }
}

// Random values against the same-order reference: equal on FMA targets; elsewhere each of the rank steps may round
// its product separately, so allow one rounding of every partial sum.
TEST_P(MatMulTargetTest, TransposedAccumulateRandomWithinRounding) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t rank = 16, n_out = 200, n_tokens = 2;
  std::vector<float> wv(static_cast<size_t>(rank * n_out));
  for (auto& v : wv) v = u(rng);
  const Weights wt = MakeWeights(DType::kF32, n_out, rank, wv, 0);
  std::vector<float> a(static_cast<size_t>(n_tokens * rank)), y(static_cast<size_t>(n_tokens * n_out));
  for (auto& v : a) v = u(rng);
  for (auto& v : y) v = u(rng);
  std::vector<float> want = y, y0 = y;
  MatMulTransposedAccumulateRows(wt.view, a.data(), n_tokens, rank, y.data(), n_out, 0, n_out);
  reference::MatMulTransposedAccumulateRows(wt.view, a.data(), n_tokens, rank, want.data(), n_out, 0, n_out);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double abs_sum = std::fabs(y0[static_cast<size_t>(t * n_out + o)]);
      for (int64_t k = 0; k < rank; ++k) abs_sum += std::fabs(double{a[t * rank + k]} * wv[k * n_out + o]);
      const size_t i = static_cast<size_t>(t * n_out + o);
      ASSERT_NEAR(y[i], want[i], (rank + 2) * 0x1p-23 * abs_sum) << "token " << t << " output " << o;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, MatMulTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         TargetNameOf);

// A group of products of one input (decode's q, k, v) in one region: the same values, bit for bit, as separate
// MatMulWeightsT calls, for mixed weight types (two of one type share their quantized activations; an interleaved
// q4_0 weight beside a plain one), output columns interleaved in one buffer as q | k | v are, decode and prefill
// token counts, with and without threads.
TEST(MatMulTest, GroupEqualsSeparateProducts) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t n_in = 256;
  struct Spec {
    DType type;
    int64_t n_out;
    bool interleave;
  };
  const Spec specs[] = {{DType::kQ4_0, 160, true},
                        {DType::kQ4_0, 35, false},
                        {DType::kQ6_K, 48, false},
                        {DType::kF16, 40, false},
                        {DType::kQ8_0, 32, false}};
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorView> views;
  int64_t y_stride = 0;
  for (const Spec& sp : specs) {
    const size_t row_bytes = *RowBytes(sp.type, static_cast<uint64_t>(n_in));
    std::vector<float> row(static_cast<size_t>(n_in));
    std::vector<uint8_t> data(row_bytes * static_cast<size_t>(sp.n_out));
    for (int64_t r = 0; r < sp.n_out; ++r) {
      for (auto& v : row) v = u(rng);
      quant::GetQuantTraits(sp.type).quantize_row(row.data(), data.data() + static_cast<size_t>(r) * row_bytes, n_in);
    }
    if (sp.interleave) quant::InterleaveRows(sp.type, data.data(), row_bytes, sp.n_out);
    storage.push_back(std::move(data));
    TensorView v;
    v.type = sp.type;
    v.ne[0] = n_in;
    v.ne[1] = sp.n_out;
    v.data = storage.back().data();
    v.nbytes = storage.back().size();
    v.interleave = sp.interleave ? quant::kInterleaveRows : 0;
    views.push_back(v);
    y_stride += sp.n_out;
  }
  ThreadPool pool2(2);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
    for (int64_t n_tokens : {1, 3, 13}) {
      std::vector<float> x(static_cast<size_t>(n_tokens * n_in));
      for (auto& v : x) v = u(rng);
      std::vector<float> got(static_cast<size_t>(n_tokens * y_stride), -7.0f), want = got;
      std::vector<MatMulOutput> outs;
      int64_t col = 0;
      for (const TensorView& v : views) {
        outs.push_back({&v, got.data() + col, y_stride});
        MatMulWeightsT(v, x.data(), n_tokens, want.data() + col, y_stride, /*accumulate=*/false, pool);
        col += v.n_out();
      }
      MatMulWeightsTGroup(outs, x.data(), n_tokens, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], want[i]) << "n_tokens=" << n_tokens << " threads=" << (pool ? 2 : 0) << " token "
                                   << i / static_cast<size_t>(y_stride) << " column "
                                   << i % static_cast<size_t>(y_stride);
      }
    }
  }
}

TEST(MatMulTest, SupportedTypes) {
  EXPECT_TRUE(MatMulSupports(DType::kF32));
  EXPECT_TRUE(MatMulSupports(DType::kF16));
  EXPECT_TRUE(MatMulSupports(DType::kBF16));
  EXPECT_GE(hwy::SupportedAndGeneratedTargets().size(), 1u);
}

TEST(MatMulTest, ReferenceComputesWTimesX) {
  // y[t, o] = sum_i W[o, i] x[t, i] with W stored as n_out rows of n_in: a hand-checked 2x3 case.
  const float wv[6] = {1, 2, 3, 4, 5, 6};  // W = [[1 2 3], [4 5 6]]
  const TensorView w = testutil::MatrixView(DType::kF32, 3, 2, wv, sizeof(wv));
  const float x[6] = {1, 0, -1, 2, 1, 0};
  float y[4] = {};
  reference::MatMulWeightsT(w, x, 2, y, 2, false);
  EXPECT_EQ(y[0], -2);
  EXPECT_EQ(y[1], -2);
  EXPECT_EQ(y[2], 4);
  EXPECT_EQ(y[3], 13);
  float z[4] = {};
  MatMulWeightsT(w, x, 2, z, 2, false, nullptr);
  EXPECT_EQ(std::vector<float>(z, z + 4), std::vector<float>(y, y + 4));
}

}  // namespace
}  // namespace pocketlm
