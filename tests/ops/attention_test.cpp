// AttentionForward against a naive double-precision implementation: grouped KV heads, sliding window,
// soft-capping, a KV cache with row padding, and decoding one token at a time after a prefill.
#include "ops/attention.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "tensor/half.h"

namespace pocketlm {
namespace {

std::vector<float> RandomVec(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Keys or values for the f16 cache: random values rounded to f16 (the reference reads these floats) and their bits
// (the kernel reads those).
struct CacheVec {
  std::vector<float> f;
  std::vector<uint16_t> h;
};
CacheVec RandomCache(size_t n, uint32_t seed, float scale) {
  CacheVec c{RandomVec(n, seed, scale), std::vector<uint16_t>(n)};
  for (size_t i = 0; i < n; ++i) {
    c.h[i] = F32ToF16(c.f[i]);
    c.f[i] = F16ToF32(c.h[i]);
  }
  return c;
}

// The textbook definition for query position p = pos0 + t, head h (KV head h / (n_head / n_head_kv)):
//   s_j = softcap(scale * q . k_j) for max(0, p - window + 1) <= j <= p (all j <= p without a window)
//   out = sum_j softmax(s)_j v_j
std::vector<double> NaiveAttention(const AttentionParams& p, const std::vector<float>& q, int64_t n_tokens,
                                   int64_t pos0, const std::vector<float>& k, const std::vector<float>& v,
                                   int64_t kv_stride) {
  const int hd = p.head_dim;
  std::vector<double> out(static_cast<size_t>(n_tokens * p.n_head * hd), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t pos = pos0 + t;
    for (int h = 0; h < p.n_head; ++h) {
      const int kvh = h / (p.n_head / p.n_head_kv);
      std::vector<double> s;
      std::vector<int64_t> js;
      for (int64_t j = 0; j <= pos; ++j) {
        if (p.window > 0 && j <= pos - p.window) continue;
        double dot = 0;
        for (int d = 0; d < hd; ++d) {
          dot += double{q[static_cast<size_t>((t * p.n_head + h) * hd + d)]} *
                 k[static_cast<size_t>(j * kv_stride + kvh * hd + d)];
        }
        dot *= p.scale;
        if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
        s.push_back(dot);
        js.push_back(j);
      }
      double mx = -INFINITY;
      for (double x : s) mx = std::max(mx, x);
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (size_t m = 0; m < s.size(); ++m) {
        for (int d = 0; d < hd; ++d) {
          out[static_cast<size_t>((t * p.n_head + h) * hd + d)] +=
              s[m] / sum * v[static_cast<size_t>(js[m] * kv_stride + kvh * hd + d)];
        }
      }
    }
  }
  return out;
}

struct Case {
  int window;
  float softcap;
  int64_t pos0;
};

class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, MatchesNaiveDoubleImplementation) {
  const Case c = GetParam();
  AttentionParams p;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.head_dim = 8;
  p.scale = 1.0f / std::sqrt(8.0f);
  p.softcap = c.softcap;
  p.window = c.window;
  // 9 tokens: one (token, head) item at a time; 45: prompt blocks of 16 tokens (scores as one product per KV head)
  // with a partial last block.
  for (const int64_t n_tokens : {9, 45}) {
    const int64_t kv_stride = p.n_head_kv * p.head_dim + 3;  // padded rows
    const int64_t n_pos = c.pos0 + n_tokens;
    // Large q and k so that scores reach the soft cap and the softmax is far from uniform.
    const auto q = RandomVec(static_cast<size_t>(n_tokens * p.n_head * p.head_dim), 1, 3.0f);
    const auto k = RandomCache(static_cast<size_t>(n_pos * kv_stride), 2, 3.0f);
    const auto v = RandomCache(static_cast<size_t>(n_pos * kv_stride), 3, 1.0f);
    const auto want = NaiveAttention(p, q, n_tokens, c.pos0, k.f, v.f, kv_stride);
    // Scores, exp and the weighted sum round in f32; outputs are convex combinations of |v| <= 1, so an absolute
    // bound is right: 2e-5 (about 300 u), well below the effect of dropping or adding one key.
    ThreadPool pool(3);
    for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<float> out(want.size(), NAN);
      AttentionForward(p, q.data(), n_tokens, c.pos0, k.h.data(), v.h.data(), kv_stride, out.data(), tp);
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(out[i], want[i], 2e-5) << "n_tokens " << n_tokens << " token " << i / (p.n_head * p.head_dim)
                                           << " head " << (i / p.head_dim) % p.n_head << " dim " << i % p.head_dim;
      }
    }
  }
}

TEST_P(AttentionTest, IncrementalDecodeEqualsFullPrefill) {
  const Case c = GetParam();
  AttentionParams p;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.head_dim = 8;
  p.scale = 0.3f;
  p.softcap = c.softcap;
  p.window = c.window;
  const int64_t n_total = c.pos0 + 9;
  const int64_t kv_stride = p.n_head_kv * p.head_dim;
  const int64_t row = p.n_head * p.head_dim;
  const auto q = RandomVec(static_cast<size_t>(n_total * row), 4, 2.0f);
  const auto k = RandomCache(static_cast<size_t>(n_total * kv_stride), 5, 2.0f);
  const auto v = RandomCache(static_cast<size_t>(n_total * kv_stride), 6, 1.0f);
  std::vector<float> full(static_cast<size_t>(n_total * row));
  AttentionForward(p, q.data(), n_total, 0, k.h.data(), v.h.data(), kv_stride, full.data(), nullptr);
  // Prefill the first pos0 positions (if any), then decode the rest one token at a time.
  std::vector<float> inc(full.size(), NAN);
  if (c.pos0 > 0) AttentionForward(p, q.data(), c.pos0, 0, k.h.data(), v.h.data(), kv_stride, inc.data(), nullptr);
  for (int64_t t = c.pos0; t < n_total; ++t) {
    AttentionForward(p, q.data() + t * row, 1, t, k.h.data(), v.h.data(), kv_stride, inc.data() + t * row, nullptr);
  }
  for (size_t i = 0; i < full.size(); ++i)
    ASSERT_NEAR(inc[i], full[i], 1e-6) << "position " << i / static_cast<size_t>(row);
}

INSTANTIATE_TEST_SUITE_P(Variants, AttentionTest,
                         ::testing::Values(Case{0, 0.0f, 0}, Case{0, 0.0f, 5}, Case{4, 0.0f, 0}, Case{4, 0.0f, 6},
                                           Case{0, 5.0f, 3}, Case{3, 5.0f, 7}, Case{1, 0.0f, 2}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return "window" + std::to_string(i.param.window) + "_cap" +
                                  std::to_string(static_cast<int>(i.param.softcap)) + "_pos" +
                                  std::to_string(i.param.pos0);
                         });

// The SIMD inner products on every Highway target compiled in and supported here, with a head size that is not
// a multiple of any vector length (13: vector body plus scalar tail) and a common one (64), GQA groups of 3.
class AttentionTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(AttentionTargetTest, MatchesNaiveOnEveryTarget) {
  for (int hd : {13, 64}) {
    AttentionParams p;
    p.n_head = 6;
    p.n_head_kv = 2;
    p.head_dim = hd;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (const int64_t n_tokens : {5, 37}) {  // per (token, head) item; prompt blocks
      const int64_t pos0 = 11;
      const int64_t kv_stride = p.n_head_kv * hd + 1;
      const int64_t n_pos = pos0 + n_tokens;
      const auto q = RandomVec(static_cast<size_t>(n_tokens * p.n_head * hd), 9, 1.0f);
      const auto k = RandomCache(static_cast<size_t>(n_pos * kv_stride), 10, 1.0f);
      const auto v = RandomCache(static_cast<size_t>(n_pos * kv_stride), 11, 1.0f);
      const auto want = NaiveAttention(p, q, n_tokens, pos0, k.f, v.f, kv_stride);
      ThreadPool pool(2);
      std::vector<float> out(want.size(), NAN);
      AttentionForward(p, q.data(), n_tokens, pos0, k.h.data(), v.h.data(), kv_stride, out.data(), &pool);
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(out[i], want[i], 2e-5) << "head_dim " << hd << " n_tokens " << n_tokens << " i " << i;
      }
    }
  }
}

// Decoding over a longer cache: the keys in chunks of 64, each chunk's scores in groups of as many keys as a vector
// has lanes (their dot products reduced together) plus a tail; GQA runs share one f32 copy of each chunk, single
// heads (MHA, or a thread's share ending inside a group) read the f16 cache directly. Head sizes of 1, 4 and
// 0.8 vectors of 16 lanes.
TEST_P(AttentionTargetTest, DecodeOverLongCacheMatchesNaive) {
  for (int hd : {16, 64, 13}) {
    for (auto [n_head, n_head_kv] : {std::pair{6, 2}, std::pair{3, 3}}) {
      AttentionParams p;
      p.n_head = n_head;
      p.n_head_kv = n_head_kv;
      p.head_dim = hd;
      p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      for (const int64_t n_tokens : {1, 2}) {
        const int64_t pos0 = 150;
        const int64_t kv_stride = p.n_head_kv * hd + 1;
        const int64_t n_pos = pos0 + n_tokens;
        const auto q = RandomVec(static_cast<size_t>(n_tokens * p.n_head * hd), 12, 2.0f);
        const auto k = RandomCache(static_cast<size_t>(n_pos * kv_stride), 13, 2.0f);
        const auto v = RandomCache(static_cast<size_t>(n_pos * kv_stride), 14, 1.0f);
        const auto want = NaiveAttention(p, q, n_tokens, pos0, k.f, v.f, kv_stride);
        ThreadPool pool(2);
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
          std::vector<float> out(want.size(), NAN);
          AttentionForward(p, q.data(), n_tokens, pos0, k.h.data(), v.h.data(), kv_stride, out.data(), tp);
          for (size_t i = 0; i < out.size(); ++i) {
            ASSERT_NEAR(out[i], want[i], 2e-5) << "head_dim " << hd << " heads " << n_head << "/" << n_head_kv
                                               << " n_tokens " << n_tokens << " i " << i;
          }
        }
      }
    }
  }
}

// The cache rows' conversion: bit-equal to the scalar F32ToF16 (ties to even, subnormals, overflow to infinity) at
// a length with a scalar tail on every target.
TEST_P(AttentionTargetTest, F32ToF16RowEqualsScalarConversion) {
  std::vector<float> x = RandomVec(1000, 12, 70000.0f);
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> e(-30, 16);
  for (size_t i = 0; i < x.size(); i += 3) x[i] = std::ldexp(x[i] / 70000.0f, e(rng));  // tiny to large exponents
  // Exact ties between two f16 values (11 significant bits + a half), both parities, and signed zeros.
  x[1] = 1.0f + 0x1p-11f, x[4] = 1.0f + 3 * 0x1p-11f, x[7] = -0.0f, x[10] = 65520.0f, x[13] = 0x1p-25f;
  std::vector<uint16_t> got(x.size());
  F32ToF16Row(x.data(), static_cast<int64_t>(x.size()), got.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], F32ToF16(x[i])) << "x = " << x[i] << " at " << i;
}

INSTANTIATE_TEST_SUITE_P(Targets, AttentionTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& i) { return hwy::TargetName(i.param); });

TEST(AttentionSanityTest, WindowOfOneReturnsOwnValue) {
  // With window 1 each query sees only its own key, so the output is that position's value row.
  AttentionParams p{2, 1, 4, 1.0f, 0.0f, 1};
  const auto q = RandomVec(3 * 8, 7, 1.0f);
  const auto kv = RandomCache(3 * 4, 8, 1.0f);
  std::vector<float> out(3 * 8);
  AttentionForward(p, q.data(), 3, 0, kv.h.data(), kv.h.data(), 4, out.data(), nullptr);
  for (int t = 0; t < 3; ++t) {
    for (int h = 0; h < 2; ++h) {
      for (int d = 0; d < 4; ++d)
        EXPECT_FLOAT_EQ(out[static_cast<size_t>(t * 8 + h * 4 + d)], kv.f[static_cast<size_t>(t * 4 + d)]);
    }
  }
}

}  // namespace
}  // namespace pocketlm
