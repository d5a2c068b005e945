// GemmF32 and MatMulWeightsBackwardInput (Highway, dynamic dispatch) against their scalar references on every
// target compiled into the binary and supported by this CPU: all four transpose combinations, odd sizes, padded
// strides, beta 0 (over a NaN-filled C) and 1, every weight type pocketlm can read, and identical bits for any
// thread count. The references are in turn tied to the forward: <dy, W x> = <W^T dy, x>.
#include "ops/matmul_backward.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/matmul.h"
#include "ops_test_util.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

class MatMulBackwardTargetTest : public testutil::HwyTargetTest {};
using testutil::TargetNameOf;

// Multiples of 1/den in [-lim, lim].
std::vector<float> Grid(size_t n, std::mt19937& rng, int lim_steps, float den) {
  std::uniform_int_distribution<int> u(-lim_steps, lim_steps);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(u(rng)) / den;
  return v;
}

std::vector<float> Uniform(size_t n, std::mt19937& rng, float lim) {
  std::uniform_real_distribution<float> u(-lim, lim);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

struct GemmShape {
  int64_t M, N, K;
};
constexpr GemmShape kGemmShapes[] = {{1, 1, 1},   {1, 3, 7},     {5, 1, 9},     {3, 17, 1},   {7, 33, 260},
                                     {70, 5, 31}, {17, 300, 13}, {66, 19, 513}, {16, 260, 40}};

// Stored operand sizes for op(A) (M, K) / op(B) (K, N) with row padding.
struct GemmOperands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C0;
};
GemmOperands MakeOperands(bool ta, bool tb, const GemmShape& s, std::mt19937& rng, bool grid) {
  GemmOperands o;
  const int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
  const int64_t b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
  o.lda = a_cols + 2, o.ldb = b_cols + 1, o.ldc = s.N + 3;
  const auto na = static_cast<size_t>(a_rows * o.lda), nb = static_cast<size_t>(b_rows * o.ldb);
  const auto nc = static_cast<size_t>(s.M * o.ldc);
  o.A = grid ? Grid(na, rng, 8, 8.0f) : Uniform(na, rng, 1.0f);
  o.B = grid ? Grid(nb, rng, 8, 4.0f) : Uniform(nb, rng, 1.0f);
  o.C0 = grid ? Grid(nc, rng, 8, 1.0f) : Uniform(nc, rng, 1.0f);
  return o;
}

// Grid values (A: k/8 in [-1, 1], B: k/4 in [-2, 2], C: integers, alpha and beta powers of two): every product
// and partial sum is exact in f32 (|sum| <= 1026 + 16 in steps of 1/64 needs < 2^24), so any correct kernel
// equals the reference bit for bit whatever its order; a dropped, doubled or misplaced term cannot hide. Also:
// beta 0 must not read C (filled with NaN), padding columns of C stay untouched.
TEST_P(MatMulBackwardTargetTest, GemmExactOnGridValues) {
  std::mt19937 rng(3);
  ThreadPool pool3(3);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const GemmShape& s : kGemmShapes) {
        const GemmOperands o = MakeOperands(ta, tb, s, rng, true);
        for (float beta : {0.0f, 1.0f, -0.5f}) {
          for (float alpha : {1.0f, -0.5f}) {
            std::vector<float> want = o.C0, got = o.C0;
            if (beta == 0.0f) {
              for (int64_t m = 0; m < s.M; ++m) {
                for (int64_t n = 0; n < s.N; ++n) want[static_cast<size_t>(m * o.ldc + n)] = NAN;
              }
              got = want;
            }
            reference::GemmF32(ta, tb, s.M, s.N, s.K, alpha, o.A.data(), o.lda, o.B.data(), o.ldb, beta, want.data(),
                               o.ldc);
            GemmF32(ta, tb, s.M, s.N, s.K, alpha, o.A.data(), o.lda, o.B.data(), o.ldb, beta, got.data(), o.ldc,
                    &pool3);
            for (size_t i = 0; i < got.size(); ++i) {
              ASSERT_EQ(got[i], want[i]) << "ta=" << ta << " tb=" << tb << " M=" << s.M << " N=" << s.N << " K=" << s.K
                                         << " alpha=" << alpha << " beta=" << beta << " at row "
                                         << i / static_cast<size_t>(o.ldc) << " col " << i % static_cast<size_t>(o.ldc);
            }
          }
        }
      }
    }
  }
}

// Random values: within the forward error bound of a float dot product, |err| <= gamma_K sum_k |a_k b_k| with
// gamma_K ~ K 2^-24, taken as (K + 2) 2^-23 (a factor 2 of slack), plus a rounding of beta * C and of the result.
// And identical bits with no pool, 1 thread and 3 threads.
TEST_P(MatMulBackwardTargetTest, GemmRandomWithinBoundAndThreadIndependent) {
  std::mt19937 rng(4);
  ThreadPool pool1(1), pool3(3);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const GemmShape& s : kGemmShapes) {
        const GemmOperands o = MakeOperands(ta, tb, s, rng, false);
        for (float beta : {0.0f, 1.0f}) {
          std::vector<float> want = o.C0;
          reference::GemmF32(ta, tb, s.M, s.N, s.K, 0.75f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, want.data(),
                             o.ldc);
          std::vector<float> first;
          for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool3}) {
            std::vector<float> got = o.C0;
            GemmF32(ta, tb, s.M, s.N, s.K, 0.75f, o.A.data(), o.lda, o.B.data(), o.ldb, beta, got.data(), o.ldc, pool);
            if (pool == nullptr) {
              double worst = 0;
              for (int64_t m = 0; m < s.M; ++m) {
                for (int64_t n = 0; n < s.N; ++n) {
                  double abs_sum = 0;
                  for (int64_t k = 0; k < s.K; ++k) {
                    const float a =
                        ta ? o.A[static_cast<size_t>(k * o.lda + m)] : o.A[static_cast<size_t>(m * o.lda + k)];
                    const float b =
                        tb ? o.B[static_cast<size_t>(n * o.ldb + k)] : o.B[static_cast<size_t>(k * o.ldb + n)];
                    abs_sum += std::fabs(double{a} * b);
                  }
                  const auto i = static_cast<size_t>(m * o.ldc + n);
                  const double tol = (s.K + 2) * 0x1p-23 * 0.75 * abs_sum +
                                     0x1p-23 * (beta * std::fabs(o.C0[i]) + std::fabs(want[i])) + 1e-30;
                  worst = std::max(worst, std::fabs(got[i] - want[i]) / tol);
                  ASSERT_NEAR(got[i], want[i], tol) << "ta=" << ta << " tb=" << tb << " M=" << s.M << " N=" << s.N
                                                    << " K=" << s.K << " beta=" << beta << " at " << m << "," << n;
                }
              }
              EXPECT_LT(worst, 1.0);
              first = got;
            } else {
              ASSERT_EQ(got, first) << "threads=" << pool->size() << " M=" << s.M << " N=" << s.N << " K=" << s.K;
            }
          }
        }
      }
    }
  }
}

// Quantized storage of a random (n_out, n_in) matrix via the reference quantizer of `type`.
struct QuantWeights {
  std::vector<uint8_t> bytes;
  TensorView view;
};
QuantWeights Quantize(DType type, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  const auto& tr = quant::GetQuantTraits(type);
  QuantWeights w;
  const size_t row_bytes =
      static_cast<size_t>(n_in) / GetDTypeInfo(tr.type).block_size * GetDTypeInfo(tr.type).type_size;
  w.bytes.resize(row_bytes * static_cast<size_t>(n_out) + 4);
  // 4 bytes past an allocation: aligned for the block structs' fields (at most 4 bytes, Q8_K's float d), not for
  // SIMD vectors, as a tensor inside a GGUF file may be.
  uint8_t* base = w.bytes.data() + 4;
  for (int64_t o = 0; o < n_out; ++o) {
    const auto row = Uniform(static_cast<size_t>(n_in), rng, 2.0f);
    tr.quantize_row(row.data(), base + static_cast<size_t>(o) * row_bytes, n_in);
  }
  w.view.type = type;
  w.view.ne[0] = n_in;
  w.view.ne[1] = n_out;
  w.view.data = base;
  w.view.nbytes = row_bytes * static_cast<size_t>(n_out);
  return w;
}

std::vector<DType> ReadableTypes() {
  int count = 0;
  const quant::QuantTraits* table = quant::QuantTraitsTable(&count);
  std::vector<DType> types;
  for (int i = 0; i < count; ++i) {
    if (table[i].dequantize_row != nullptr && table[i].quantize_row != nullptr && MatMulSupports(table[i].type)) {
      types.push_back(table[i].type);
    }
  }
  return types;
}

// Every readable weight type against the reference (double accumulation over reference-dequantized rows), within
// the float dot-product bound; 1 and 3 threads give identical bits. n_in spans several 256-column tasks with a
// partial last one (block-32 types) and n_out crosses the 256-row inner chunk; 70 tokens cross a 64-row A block.
TEST_P(MatMulBackwardTargetTest, WeightsBackwardInputAllTypes) {
  std::mt19937 rng(5);
  ThreadPool pool1(1), pool3(3);
  const auto types = ReadableTypes();
  ASSERT_GE(types.size(), 17u);  // f32, f16, bf16, 5 legacy, q8_1, 6 k-quants, iq4_nl, iq4_xs
  for (DType type : types) {
    const int64_t bs = GetDTypeInfo(type).block_size;
    const int64_t n_in = bs == 1 ? 300 : bs == 32 ? 32 * 13 : 256 * 3;
#ifdef PLM_TEST_UNDER_EMULATOR
    // Under qemu-user (cross builds) a scalable-vector target runs ~1000x slower: the small shapes only.
    const std::vector<int64_t> out_sizes = {1, 37}, token_counts = {1, 5};
#else
    const std::vector<int64_t> out_sizes = {1, 37, 300}, token_counts = {1, 5, 70};
#endif
    for (int64_t n_out : out_sizes) {
      const QuantWeights w = Quantize(type, n_in, n_out, rng);
      std::vector<float> wdq(static_cast<size_t>(n_in * n_out));
      for (int64_t o = 0; o < n_out; ++o) reference::DequantizeRow(w.view, o, wdq.data() + o * n_in);
      for (int64_t n_tokens : token_counts) {
        const int64_t dy_stride = n_out + 2, dx_stride = n_in + 5;
        const auto dy = Uniform(static_cast<size_t>(n_tokens * dy_stride), rng, 1.0f);
        for (bool accumulate : {false, true}) {
          const auto dx0 = Uniform(static_cast<size_t>(n_tokens * dx_stride), rng, 1.0f);
          std::vector<float> want = dx0;
          reference::MatMulWeightsBackwardInput(w.view, dy.data(), n_tokens, dy_stride, want.data(), dx_stride,
                                                accumulate);
          std::vector<float> first;
          for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool3}) {
            std::vector<float> got = dx0;
            MatMulWeightsBackwardInput(w.view, dy.data(), n_tokens, dy_stride, got.data(), dx_stride, accumulate, pool);
            if (pool != nullptr) {
              ASSERT_EQ(got, first) << DTypeName(type) << " threads=" << pool->size();
              continue;
            }
            first = got;
            for (int64_t t = 0; t < n_tokens; ++t) {
              for (int64_t i = 0; i < dx_stride; ++i) {
                const auto at = static_cast<size_t>(t * dx_stride + i);
                if (i >= n_in) {
                  ASSERT_EQ(got[at], dx0[at]) << "padding column written";
                  continue;
                }
                double abs_sum = 0;
                for (int64_t o = 0; o < n_out; ++o) {
                  abs_sum += std::fabs(double{dy[static_cast<size_t>(t * dy_stride + o)]} *
                                       wdq[static_cast<size_t>(o * n_in + i)]);
                }
                const double tol = (n_out + 2) * 0x1p-23 * abs_sum +
                                   0x1p-23 * (std::fabs(want[at]) + (accumulate ? std::fabs(dx0[at]) : 0.0)) + 1e-30;
                ASSERT_NEAR(got[at], want[at], tol) << DTypeName(type) << " n_out=" << n_out << " n_tokens=" << n_tokens
                                                    << " acc=" << accumulate << " at token " << t << " column " << i;
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, MatMulBackwardTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         TargetNameOf);

// The backward reference is the transpose of the forward reference: <dy, W x> = <W^T dy, x> for every type, in
// double up to the f32 rounding of each output (2^-24 relative to sum |terms|).
TEST(MatMulBackwardTest, ReferenceIsTheAdjointOfTheForward) {
  std::mt19937 rng(6);
  for (DType type : ReadableTypes()) {
    const int64_t n_in = GetDTypeInfo(type).block_size == 256 ? 512 : 64, n_out = 9, n_tokens = 3;
    const QuantWeights w = Quantize(type, n_in, n_out, rng);
    const auto x = Uniform(static_cast<size_t>(n_tokens * n_in), rng, 1.0f);
    const auto dy = Uniform(static_cast<size_t>(n_tokens * n_out), rng, 1.0f);
    std::vector<float> y(static_cast<size_t>(n_tokens * n_out)), dx(x.size());
    reference::MatMulWeightsT(w.view, x.data(), n_tokens, y.data(), n_out, false);
    reference::MatMulWeightsBackwardInput(w.view, dy.data(), n_tokens, n_out, dx.data(), n_in, false);
    double lhs = 0, rhs = 0, mag = 0;
    for (size_t i = 0; i < y.size(); ++i) lhs += double{dy[i]} * y[i], mag += std::fabs(double{dy[i]} * y[i]);
    for (size_t i = 0; i < x.size(); ++i) rhs += double{dx[i]} * x[i], mag += std::fabs(double{dx[i]} * x[i]);
    EXPECT_NEAR(lhs, rhs, 0x1p-23 * mag) << DTypeName(type);
  }
}

TEST(MatMulBackwardTest, HandCheckedProducts) {
  // W = [[1 2 3], [4 5 6]] (n_out 2, n_in 3); dy = [1, -1] -> dx = dy W = [-3, -3, -3].
  const float wv[6] = {1, 2, 3, 4, 5, 6};
  const TensorView w = testutil::MatrixView(DType::kF32, 3, 2, wv, sizeof(wv));
  const float dy[2] = {1, -1};
  float dx[3] = {10, 10, 10};
  MatMulWeightsBackwardInput(w, dy, 1, 2, dx, 3, false, nullptr);
  EXPECT_EQ(std::vector<float>(dx, dx + 3), (std::vector<float>{-3, -3, -3}));
  MatMulWeightsBackwardInput(w, dy, 1, 2, dx, 3, true, nullptr);
  EXPECT_EQ(std::vector<float>(dx, dx + 3), (std::vector<float>{-6, -6, -6}));
  // C (2x2) = A^T B with A stored (3, 2) = W^T, B = W^T: (W W^T) = [[14 32], [32 77]].
  const float at[6] = {1, 4, 2, 5, 3, 6};
  float c[4] = {NAN, NAN, NAN, NAN};
  GemmF32(true, false, 2, 2, 3, 1.0f, at, 2, at, 2, 0.0f, c, 2, nullptr);
  EXPECT_EQ(std::vector<float>(c, c + 4), (std::vector<float>{14, 32, 32, 77}));
  // K = 0: C = beta * C.
  GemmF32(false, false, 2, 2, 0, 1.0f, at, 1, at, 2, 0.5f, c, 2, nullptr);
  EXPECT_EQ(std::vector<float>(c, c + 4), (std::vector<float>{7, 16, 16, 38.5f}));
}

}  // namespace
}  // namespace pocketlm
