// Cross-entropy: the per-position loss and gradient in double against finite differences, float against double,
// and FusedCrossEntropy against the same computation composed in double (logits from the dequantized weights, or
// from MatMulWeightsT for quantized weights, whose 8-bit activations are part of the forward), with ignored targets,
// soft-capping, grad_scale, several chunk sizes and identical bits for any thread count.
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "grad_check.h"
#include "ops/matmul.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

using namespace gradcheck;  // NOLINT(google-build-using-namespace): the helpers of grad_check.h

TEST(CrossEntropyRowTest, MatchesFiniteDifferencesAndFloat) {
  for (int64_t n_vocab : {1, 2, 7, 50}) {
    for (float softcap : {0.0f, 4.0f}) {
      for (float grad_scale : {1.0f, 0.25f}) {
        const int32_t target = static_cast<int32_t>(n_vocab / 2);
        const auto z = RandomFloatValues(static_cast<size_t>(n_vocab), 1 + static_cast<uint32_t>(n_vocab), -6, 6);
        const std::string tag =
            "V=" + std::to_string(n_vocab) + " cap=" + std::to_string(softcap) + " scale=" + std::to_string(grad_scale);
        auto loss = [&](const std::vector<double>& x) {
          auto tmp = x;
          return grad::CrossEntropyRow(tmp.data(), n_vocab, target, softcap, 1.0f, false);
        };
        auto g = z;
        const double l = grad::CrossEntropyRow(g.data(), n_vocab, target, softcap, grad_scale, true);
        EXPECT_DOUBLE_EQ(l, loss(z));
        auto fd = FiniteDiff(z, loss);
        for (auto& x : fd) x *= grad_scale;
        EXPECT_TRUE(Close("CE row dz (double vs FD) " + tag, g, fd, 1e-6));
        auto gf = Cast<float>(z);
        const double lf = grad::CrossEntropyRow(gf.data(), n_vocab, target, softcap, grad_scale, true);
        // f32 logits, exp and probabilities: a few roundings relative to the largest gradient entry (<= 1).
        EXPECT_NEAR(lf, l, 1e-6 * (1 + std::fabs(l))) << tag;
        EXPECT_TRUE(Close("CE row dz (float vs double) " + tag, gf, g, 1e-5, 1e-2));
      }
    }
  }
  // Equal logits: the loss is log(V) and the gradient is 1/V - onehot.
  std::vector<double> z(10, 3.0);
  EXPECT_NEAR(grad::CrossEntropyRow(z.data(), 10, 4, 0.0f, 1.0f, true), std::log(10.0), 1e-14);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(z[static_cast<size_t>(i)], (i == 4 ? -0.9 : 0.1), 1e-15);
}

// An output projection (n_vocab, n_embd) stored in `type`.
struct Weights {
  std::vector<uint8_t> bytes;
  TensorView view;
  std::vector<double> dq;  // (n_vocab, n_embd) dequantized
};
Weights MakeWeights(DType type, int64_t n_embd, int64_t n_vocab, uint32_t seed) {
  const auto& tr = quant::GetQuantTraits(type);
  Weights w;
  const size_t row_bytes =
      static_cast<size_t>(n_embd) / GetDTypeInfo(tr.type).block_size * GetDTypeInfo(tr.type).type_size;
  w.bytes.resize(row_bytes * static_cast<size_t>(n_vocab));
  const auto values = Cast<float>(RandomFloatValues(static_cast<size_t>(n_embd * n_vocab), seed, -0.5, 0.5));
  for (int64_t o = 0; o < n_vocab; ++o) {
    tr.quantize_row(values.data() + o * n_embd, w.bytes.data() + static_cast<size_t>(o) * row_bytes, n_embd);
  }
  w.view.type = type;
  w.view.ne[0] = n_embd;
  w.view.ne[1] = n_vocab;
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  std::vector<float> row(static_cast<size_t>(n_embd));
  for (int64_t o = 0; o < n_vocab; ++o) {
    reference::DequantizeRow(w.view, o, row.data());
    w.dq.insert(w.dq.end(), row.begin(), row.end());
  }
  return w;
}

// The fused op written out in double: logits (given, or W h), per-row loss and gradient, dh = grad W.
double ComposedDouble(const Weights& w, const std::vector<double>& h, const std::vector<int32_t>& targets,
                      float softcap, float grad_scale, const std::vector<double>* given_logits,
                      std::vector<double>* dh) {
  const int64_t n_embd = w.view.n_in(), n_vocab = w.view.n_out(), T = static_cast<int64_t>(targets.size());
  double loss = 0;
  if (dh != nullptr) dh->assign(h.size(), 0.0);
  std::vector<double> z(static_cast<size_t>(n_vocab));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t y = targets[static_cast<size_t>(t)];
    if (y < 0 || y >= n_vocab) continue;
    for (int64_t o = 0; o < n_vocab; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < n_embd; ++i)
        acc += w.dq[static_cast<size_t>(o * n_embd + i)] * h[static_cast<size_t>(t * n_embd + i)];
      z[static_cast<size_t>(o)] = given_logits != nullptr ? (*given_logits)[static_cast<size_t>(t * n_vocab + o)] : acc;
    }
    loss += grad::CrossEntropyRow(z.data(), n_vocab, y, softcap, grad_scale, dh != nullptr);
    if (dh == nullptr) continue;
    for (int64_t o = 0; o < n_vocab; ++o) {
      for (int64_t i = 0; i < n_embd; ++i) {
        (*dh)[static_cast<size_t>(t * n_embd + i)] +=
            z[static_cast<size_t>(o)] * w.dq[static_cast<size_t>(o * n_embd + i)];
      }
    }
  }
  return loss;
}

struct FusedCase {
  DType type;
  float softcap;
};

class FusedCrossEntropyTest : public ::testing::TestWithParam<FusedCase> {};

TEST_P(FusedCrossEntropyTest, MatchesComposedDouble) {
  const FusedCase c = GetParam();
  const int64_t n_embd = GetDTypeInfo(c.type).block_size == 256 ? 256 : 64, n_vocab = 301, T = 13;
  const Weights w = MakeWeights(c.type, n_embd, n_vocab, 7);
  // Ignored positions: negative (padding, prompt tokens) and one out-of-range id.
  const std::vector<int32_t> targets = {5, -1, 300, 0, 17, -100, 42, 42, 301, 7, 250, -1, 1};
  const auto h = RandomFloatValues(static_cast<size_t>(T * n_embd), 8, -2, 2);
  const auto hf = Cast<float>(h);
  const float grad_scale = 1.0f / 9;
  const std::string tag = std::string(DTypeName(c.type)) + " cap=" + std::to_string(c.softcap);

  // The float logits MatMulWeightsT gives (quantized types multiply 8-bit activations): the reference takes them
  // as given for quantized weights, and W h in double for f32 / f16 (where they agree to rounding).
  const bool exact_logits = c.type == DType::kF32 || c.type == DType::kF16;
  std::vector<float> lf(static_cast<size_t>(T * n_vocab));
  MatMulWeightsT(w.view, hf.data(), T, lf.data(), n_vocab, false, nullptr);
  const auto given = Cast<double>(lf);
  std::vector<double> want_dh;
  const double want = ComposedDouble(w, h, targets, c.softcap, grad_scale, exact_logits ? nullptr : &given, &want_dh);

  ThreadPool pool3(3);
  std::vector<float> first_dh;
  double first_loss = 0;
  for (int64_t chunk : {1, 4, 32}) {
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool3}) {
      std::vector<float> dh(h.size(), NAN);
      const CrossEntropyResult r =
          FusedCrossEntropy(w.view, hf.data(), targets.data(), T, c.softcap, grad_scale, dh.data(), pool, chunk);
      EXPECT_EQ(r.n_counted, 9);
      // Loss: a sum of 9 terms of size ~log(301), each to a few f32 roundings of the logits.
      EXPECT_NEAR(r.loss_sum, want, 1e-6 * want) << tag << " chunk=" << chunk;
      EXPECT_TRUE(
          Close("fused CE dh (float vs double) " + tag + " chunk=" + std::to_string(chunk), dh, want_dh, 1e-4, 1e-2));
      for (int64_t t : {1, 5, 8, 11}) {
        for (int64_t i = 0; i < n_embd; ++i) ASSERT_EQ(dh[static_cast<size_t>(t * n_embd + i)], 0.0f) << "ignored row";
      }
      if (pool == nullptr) {
        first_dh = dh, first_loss = r.loss_sum;
      } else {
        EXPECT_EQ(r.loss_sum, first_loss) << "threads";
        EXPECT_EQ(dh, first_dh) << "threads";
      }
      // Without dh: the same loss.
      const CrossEntropyResult r2 =
          FusedCrossEntropy(w.view, hf.data(), targets.data(), T, c.softcap, grad_scale, nullptr, pool, chunk);
      EXPECT_EQ(r2.loss_sum, r.loss_sum);
    }
  }
  // The composed double gradient is the derivative of the composed double loss (checks the chain through W, and
  // that dh carries grad_scale): finite differences over every hidden value.
  if (exact_logits) {
    auto fd = FiniteDiff(h, [&](const std::vector<double>& x) {
      return ComposedDouble(w, x, targets, c.softcap, 1.0f, nullptr, nullptr);
    });
    for (auto& g : fd) g *= grad_scale;
    EXPECT_TRUE(Close("fused CE dh (composed double vs FD) " + tag, want_dh, fd, 1e-6));
  }
}

INSTANTIATE_TEST_SUITE_P(Types, FusedCrossEntropyTest,
                         ::testing::Values(FusedCase{DType::kF32, 0.0f}, FusedCase{DType::kF32, 3.0f},
                                           FusedCase{DType::kF16, 0.0f}, FusedCase{DType::kQ8_0, 0.0f},
                                           FusedCase{DType::kQ4_K, 3.0f}, FusedCase{DType::kQ6_K, 0.0f}),
                         [](const ::testing::TestParamInfo<FusedCase>& i) {
                           return std::string(DTypeName(i.param.type)) + "_cap" +
                                  std::to_string(static_cast<int>(i.param.softcap));
                         });

TEST(FusedCrossEntropyEdgeTest, NothingCounted) {
  const Weights w = MakeWeights(DType::kF32, 8, 5, 9);
  const std::vector<int32_t> targets = {-1, -1};
  const auto h = Cast<float>(RandomFloatValues(16, 10, -1, 1));
  std::vector<float> dh(16, NAN);
  const CrossEntropyResult r = FusedCrossEntropy(w.view, h.data(), targets.data(), 2, 0.0f, 1.0f, dh.data(), nullptr);
  EXPECT_EQ(r.n_counted, 0);
  EXPECT_EQ(r.loss_sum, 0.0);
  for (float x : dh) EXPECT_EQ(x, 0.0f);
}

}  // namespace
}  // namespace pocketlm
