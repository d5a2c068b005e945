// Training attention: the double forward against a naive double implementation (out and lse), the double backward
// against central finite differences of the double forward, the float instantiation (the public API) against the
// double one, AttentionForward equivalence without document masks, and bit-identical results for any thread count.
// Cases cover GQA ratios 1, 2, 4, odd head sizes, soft-capping, sliding windows, packed-document masks, padded KV
// rows, and sequences longer than the 16-key blocks of the dk / dv pass. A second suite runs the tiled f32 kernels on
// every compiled Highway target at sizes spanning several 64-token blocks (partial last blocks, odd head sizes,
// misaligned rows, windows and documents that cut blocks, tokens without keys) against the double reference.
#include "ops/attention_train.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "grad_check.h"
#include "tensor/half.h"

namespace pocketlm {
namespace {

using namespace gradcheck;  // NOLINT(google-build-using-namespace): the helpers of grad_check.h

struct Case {
  int n_head, n_head_kv, head_dim;
  int64_t T;
  float softcap;
  int window;
  bool segments;
};

std::string Name(const Case& c) {
  return "h" + std::to_string(c.n_head) + "kv" + std::to_string(c.n_head_kv) + "d" + std::to_string(c.head_dim) + "T" +
         std::to_string(c.T) + "cap" + std::to_string(static_cast<int>(c.softcap)) + "win" + std::to_string(c.window) +
         (c.segments ? "seg" : "");
}

// Packed documents of 1..7 tokens: seg_start[t] = first token of t's document.
std::vector<int32_t> Segments(int64_t T, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> len(1, 7);
  std::vector<int32_t> s(static_cast<size_t>(T));
  int64_t start = 0;
  while (start < T) {
    const int64_t end = std::min<int64_t>(T, start + len(rng));
    for (int64_t t = start; t < end; ++t) s[static_cast<size_t>(t)] = static_cast<int32_t>(start);
    start = end;
  }
  return s;
}

// Textbook attention in double, written independently of the kernel: explicit key list per query.
void Naive(const AttentionParams& p, const std::vector<double>& q, const std::vector<double>& k,
           const std::vector<double>& v, int64_t kv_stride, int64_t T, const int32_t* seg, std::vector<double>* out,
           std::vector<double>* lse) {
  const int hd = p.head_dim;
  out->assign(static_cast<size_t>(T * p.n_head * hd), 0.0);
  lse->assign(static_cast<size_t>(T * p.n_head), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < p.n_head; ++h) {
      const int g = h / (p.n_head / p.n_head_kv);
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= t; ++j) {
        if (p.window > 0 && t - j >= p.window) continue;
        if (seg != nullptr && j < seg[t]) continue;
        keys.push_back(j);
      }
      std::vector<double> s;
      for (int64_t j : keys) {
        double z = 0;
        for (int d = 0; d < hd; ++d) {
          z += q[static_cast<size_t>((t * p.n_head + h) * hd + d)] * k[static_cast<size_t>(j * kv_stride + g * hd + d)];
        }
        z *= p.scale;
        s.push_back(p.softcap > 0 ? p.softcap * std::tanh(z / p.softcap) : z);
      }
      double mx = -INFINITY, sum = 0;
      for (double x : s) mx = std::max(mx, x);
      for (double x : s) sum += std::exp(x - mx);
      (*lse)[static_cast<size_t>(t * p.n_head + h)] = mx + std::log(sum);
      for (size_t m = 0; m < keys.size(); ++m) {
        for (int d = 0; d < hd; ++d) {
          (*out)[static_cast<size_t>((t * p.n_head + h) * hd + d)] +=
              std::exp(s[m] - mx) / sum * v[static_cast<size_t>(keys[m] * kv_stride + g * hd + d)];
        }
      }
    }
  }
}

class AttentionTrainTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTrainTest, GradientsMatchFiniteDifferencesAndFloat) {
  const Case c = GetParam();
  AttentionParams p;
  p.n_head = c.n_head;
  p.n_head_kv = c.n_head_kv;
  p.head_dim = c.head_dim;
  p.scale = 1.7f / std::sqrt(static_cast<float>(c.head_dim));  // scores of a few units: a peaked softmax
  p.softcap = c.softcap;
  p.window = c.window;
  const int64_t T = c.T, row = static_cast<int64_t>(c.n_head) * c.head_dim;
  const int64_t kv_stride = static_cast<int64_t>(c.n_head_kv) * c.head_dim + 3;  // padded rows
  const auto seg_v = Segments(T, 21);
  const int32_t* seg = c.segments ? seg_v.data() : nullptr;
  const auto q = RandomFloatValues(static_cast<size_t>(T * row), 1, -1.5, 1.5);
  const auto k = RandomFloatValues(static_cast<size_t>(T * kv_stride), 2, -1.5, 1.5);
  const auto v = RandomFloatValues(static_cast<size_t>(T * kv_stride), 3, -1, 1);
  const auto r = RandomFloatValues(static_cast<size_t>(T * row), 4, -1, 1);  // dout: loss = sum r . out

  // Forward (double) against the naive implementation.
  std::vector<double> out(q.size()), lse(static_cast<size_t>(T * c.n_head));
  grad::AttentionTrainForward(p, q.data(), k.data(), v.data(), kv_stride, T, seg, out.data(), lse.data(), nullptr);
  std::vector<double> want_out, want_lse;
  Naive(p, q, k, v, kv_stride, T, seg, &want_out, &want_lse);
  ASSERT_TRUE(Close("attention out (double vs naive) " + Name(c), out, want_out, 1e-12));
  ASSERT_TRUE(Close("attention lse (double vs naive) " + Name(c), lse, want_lse, 1e-12));

  // Backward (double) against finite differences, every element of q, k and v (padding columns included: 0).
  std::vector<double> dq(q.size()), dk(k.size(), NAN), dv(v.size(), NAN);
  grad::AttentionTrainBackward(p, q.data(), k.data(), v.data(), kv_stride, T, seg, out.data(), lse.data(), r.data(),
                               dq.data(), dk.data(), dv.data(), nullptr);
  auto loss = [&](const std::vector<double>& qv, const std::vector<double>& kv, const std::vector<double>& vv) {
    std::vector<double> o(qv.size()), l(lse.size());
    grad::AttentionTrainForward(p, qv.data(), kv.data(), vv.data(), kv_stride, T, seg, o.data(), l.data(), nullptr);
    return gradcheck::Dot(o, r);
  };
  constexpr double kFdTol = 1e-6;
  EXPECT_TRUE(Close("attention dq (double vs FD) " + Name(c), dq,
                    FiniteDiff(q, [&](const std::vector<double>& x) { return loss(x, k, v); }), kFdTol));
  EXPECT_TRUE(Close("attention dk (double vs FD) " + Name(c), dk,
                    FiniteDiff(k, [&](const std::vector<double>& x) { return loss(q, x, v); }), kFdTol));
  EXPECT_TRUE(Close("attention dv (double vs FD) " + Name(c), dv,
                    FiniteDiff(v, [&](const std::vector<double>& x) { return loss(q, k, x); }), kFdTol));

  // Float (public API) against double, and identical bits for no pool, 1 thread and 3 threads.
  const auto qf = Cast<float>(q), kf = Cast<float>(k), vf = Cast<float>(v), rf = Cast<float>(r);
  ThreadPool pool1(1), pool3(3);
  std::vector<float> first_out, first_dq, first_dk, first_dv;
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool1, &pool3}) {
    std::vector<float> of(q.size(), NAN), lf(lse.size(), NAN);
    AttentionTrainForward(p, qf.data(), kf.data(), vf.data(), kv_stride, T, seg, of.data(), lf.data(), pool);
    std::vector<float> dqf(q.size(), NAN), dkf(k.size(), NAN), dvf(v.size(), NAN);
    AttentionTrainBackward(p, qf.data(), kf.data(), vf.data(), kv_stride, T, seg, of.data(), lf.data(), rf.data(),
                           dqf.data(), dkf.data(), dvf.data(), pool);
    if (pool == nullptr) {
      // f32 scores, exp and sums over <= T terms: a few roundings relative to the largest terms, so errors are
      // measured against the scale of the tensor: out is a convex combination of v (floor 1e-2 of max |out|),
      // lse carries the rounding of scores of size max |lse| (floor 0.1), and the backward cancels in dP - D
      // (floor 1e-2 of the largest gradient entry).
      EXPECT_TRUE(Close("attention out (float vs double) " + Name(c), of, out, 1e-5, 1e-2));
      EXPECT_TRUE(Close("attention lse (float vs double) " + Name(c), lf, lse, 1e-6, 0.1));
      EXPECT_TRUE(Close("attention dq (float vs double) " + Name(c), dqf, dq, 1e-4, 1e-2));
      EXPECT_TRUE(Close("attention dk (float vs double) " + Name(c), dkf, dk, 1e-4, 1e-2));
      EXPECT_TRUE(Close("attention dv (float vs double) " + Name(c), dvf, dv, 1e-4, 1e-2));
      first_out = of, first_dq = dqf, first_dk = dkf, first_dv = dvf;
      if (seg == nullptr) {
        // Same numbers as the inference kernel, up to the summation order of the dot products, on keys and values
        // rounded to f16 (the inference cache's type).
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        std::vector<float> kr(kf.size()), vr(vf.size()), of16(q.size(), NAN), lf16(lse.size(), NAN);
        for (size_t i = 0; i < kf.size(); ++i) kr[i] = F16ToF32(kh[i] = F32ToF16(kf[i]));
        for (size_t i = 0; i < vf.size(); ++i) vr[i] = F16ToF32(vh[i] = F32ToF16(vf[i]));
        AttentionTrainForward(p, qf.data(), kr.data(), vr.data(), kv_stride, T, seg, of16.data(), lf16.data(), pool);
        std::vector<float> inf(q.size(), NAN);
        AttentionForward(p, qf.data(), T, 0, kh.data(), vh.data(), kv_stride, inf.data(), nullptr);
        for (size_t i = 0; i < inf.size(); ++i) ASSERT_NEAR(of16[i], inf[i], 1e-6) << Name(c) << " at " << i;
      }
    } else {
      const std::string threads = " threads=" + std::to_string(pool->size());
      for (size_t i = 0; i < of.size(); ++i) ASSERT_EQ(of[i], first_out[i]) << "out" << threads;
      for (size_t i = 0; i < of.size(); ++i) ASSERT_EQ(dqf[i], first_dq[i]) << "dq" << threads;
      for (size_t i = 0; i < dkf.size(); ++i) ASSERT_EQ(dkf[i], first_dk[i]) << "dk" << threads;
      for (size_t i = 0; i < dvf.size(); ++i) ASSERT_EQ(dvf[i], first_dv[i]) << "dv" << threads;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, AttentionTrainTest,
                         ::testing::Values(Case{2, 2, 5, 9, 0.0f, 0, false}, Case{4, 2, 8, 11, 0.0f, 0, true},
                                           Case{4, 1, 3, 13, 2.0f, 0, false}, Case{8, 2, 4, 10, 0.0f, 4, true},
                                           Case{4, 4, 6, 12, 1.5f, 3, true}, Case{2, 1, 16, 7, 0.0f, 1, false},
                                           Case{6, 3, 5, 17, 2.5f, 5, true}, Case{4, 1, 4, 40, 0.0f, 0, true},
                                           Case{4, 2, 3, 37, 2.0f, 19, false}, Case{2, 1, 9, 35, 0.0f, 0, false}),
                         [](const ::testing::TestParamInfo<Case>& i) { return Name(i.param); });

// The f32 kernels tile queries and keys in blocks of 64 and skip masked blocks and 4-row tiles; these shapes cross
// block boundaries in every pass. seg: 0 none, 1 documents of 1..90 tokens with every 13th token keyless
// (seg_start = t + 1), 2 documents of 1..7 tokens.
struct TiledCase {
  int n_head, n_head_kv, head_dim;
  int64_t T;
  float softcap;
  int window;
  int seg;
};

std::string Name(const TiledCase& c) {
  return "h" + std::to_string(c.n_head) + "kv" + std::to_string(c.n_head_kv) + "d" + std::to_string(c.head_dim) + "T" +
         std::to_string(c.T) + "cap" + std::to_string(static_cast<int>(c.softcap)) + "win" + std::to_string(c.window) +
         "seg" + std::to_string(c.seg);
}

constexpr TiledCase kTiledCases[] = {
    {4, 2, 64, 150, 0.0f, 0, 0},  {4, 1, 64, 200, 0.0f, 0, 1}, {6, 2, 9, 131, 2.0f, 0, 0},
    {2, 2, 20, 190, 0.0f, 70, 1}, {4, 4, 33, 129, 1.5f, 0, 2}, {2, 1, 64, 64, 0.0f, 0, 0},
    {4, 2, 16, 140, 0.0f, 64, 0}, {2, 1, 5, 97, 0.0f, 0, 1},   {14, 2, 64, 100, 0.0f, 0, 1},
};

class AttentionTrainTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

// Copies `v` (as float) one float past a 64-byte boundary, so that no row of the operand is vector-aligned.
struct Misaligned {
  std::vector<float> storage;
  float* data;
  explicit Misaligned(const std::vector<double>& v) : storage(v.size() + 17) {
    auto addr = reinterpret_cast<uintptr_t>(storage.data());
    data = storage.data() + ((64 - addr % 64) % 64) / sizeof(float) + 1;
    for (size_t i = 0; i < v.size(); ++i) data[i] = static_cast<float>(v[i]);
  }
};

TEST_P(AttentionTrainTargetTest, TiledFloatMatchesDoubleReference) {
  for (const TiledCase& c : kTiledCases) {
    SCOPED_TRACE(Name(c));
    AttentionParams p;
    p.n_head = c.n_head;
    p.n_head_kv = c.n_head_kv;
    p.head_dim = c.head_dim;
    p.scale = 1.7f / std::sqrt(static_cast<float>(c.head_dim));
    p.softcap = c.softcap;
    p.window = c.window;
    const int64_t T = c.T, row = static_cast<int64_t>(c.n_head) * c.head_dim;
    const int64_t kv_stride = static_cast<int64_t>(c.n_head_kv) * c.head_dim + 3;
    std::vector<int32_t> seg_v;
    if (c.seg == 2) seg_v = Segments(T, 22);
    if (c.seg == 1) {
      std::mt19937 rng(23);
      std::uniform_int_distribution<int> len(1, 90);
      seg_v.resize(static_cast<size_t>(T));
      for (int64_t start = 0; start < T;) {
        const int64_t end = std::min<int64_t>(T, start + len(rng));
        for (int64_t t = start; t < end; ++t) seg_v[static_cast<size_t>(t)] = static_cast<int32_t>(start);
        start = end;
      }
      for (int64_t t = 5; t < T; t += 13) seg_v[static_cast<size_t>(t)] = static_cast<int32_t>(t + 1);
    }
    const int32_t* seg = seg_v.empty() ? nullptr : seg_v.data();
    const auto q = RandomFloatValues(static_cast<size_t>(T * row), 11, -1.5, 1.5);
    const auto k = RandomFloatValues(static_cast<size_t>(T * kv_stride), 12, -1.5, 1.5);
    const auto v = RandomFloatValues(static_cast<size_t>(T * kv_stride), 13, -1, 1);
    const auto r = RandomFloatValues(static_cast<size_t>(T * row), 14, -1, 1);

    std::vector<double> out(q.size()), lse(static_cast<size_t>(T * c.n_head));
    grad::AttentionTrainForward(p, q.data(), k.data(), v.data(), kv_stride, T, seg, out.data(), lse.data(), nullptr);
    std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
    grad::AttentionTrainBackward(p, q.data(), k.data(), v.data(), kv_stride, T, seg, out.data(), lse.data(), r.data(),
                                 dq.data(), dk.data(), dv.data(), nullptr);

    const Misaligned qf(q), kf(k), vf(v), rf(r);
    ThreadPool pool2(2), pool3(3);
    std::vector<float> first_out, first_lse, first_dq, first_dk, first_dv;
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
      std::vector<float> of(q.size(), NAN), lf(lse.size(), NAN);
      AttentionTrainForward(p, qf.data, kf.data, vf.data, kv_stride, T, seg, of.data(), lf.data(), pool);
      std::vector<float> dqf(q.size(), NAN), dkf(k.size(), NAN), dvf(v.size(), NAN);
      AttentionTrainBackward(p, qf.data, kf.data, vf.data, kv_stride, T, seg, of.data(), lf.data(), rf.data, dqf.data(),
                             dkf.data(), dvf.data(), pool);
      if (pool == nullptr) {
        // Floors as in the float-vs-double checks above; lse -inf (keyless tokens) must match too. Each f32 score is
        // one MulAdd chain over head_dim (the scalar reference's Dot keeps 8 partial sums), so at head_dim 64 the
        // scores carry ~3x the rounding and out, a softmax-weighted sum of v, follows them: measured up to 2.7e-5
        // (the scalar f32 reference: 9e-6), hence 5e-5 for out; the gradients stay within the tolerances above.
        for (size_t i = 0; i < lse.size(); ++i) {
          if (std::isinf(lse[i])) {
            ASSERT_EQ(lf[i], static_cast<float>(lse[i])) << "lse at " << i;
          }
        }
        std::vector<double> lse_fin = lse;
        std::vector<float> lf_fin = lf;
        for (size_t i = 0; i < lse.size(); ++i) {
          if (std::isinf(lse[i])) lse_fin[i] = 0, lf_fin[i] = 0;
        }
        EXPECT_TRUE(Close("tiled out (float vs double) " + Name(c), of, out, 5e-5, 1e-2));
        EXPECT_TRUE(Close("tiled lse (float vs double) " + Name(c), lf_fin, lse_fin, 1e-6, 0.1));
        EXPECT_TRUE(Close("tiled dq (float vs double) " + Name(c), dqf, dq, 1e-4, 1e-2));
        EXPECT_TRUE(Close("tiled dk (float vs double) " + Name(c), dkf, dk, 1e-4, 1e-2));
        EXPECT_TRUE(Close("tiled dv (float vs double) " + Name(c), dvf, dv, 1e-4, 1e-2));
        first_out = of, first_lse = lf, first_dq = dqf, first_dk = dkf, first_dv = dvf;
      } else {
        const std::string threads = " threads=" + std::to_string(pool->size());
        for (size_t i = 0; i < of.size(); ++i) ASSERT_EQ(of[i], first_out[i]) << "out" << threads;
        for (size_t i = 0; i < lf.size(); ++i) ASSERT_EQ(lf[i], first_lse[i]) << "lse" << threads;
        for (size_t i = 0; i < of.size(); ++i) ASSERT_EQ(dqf[i], first_dq[i]) << "dq" << threads;
        for (size_t i = 0; i < dkf.size(); ++i) ASSERT_EQ(dkf[i], first_dk[i]) << "dk" << threads;
        for (size_t i = 0; i < dvf.size(); ++i) ASSERT_EQ(dvf[i], first_dv[i]) << "dv" << threads;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionTrainTargetTest, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& i) {
                           return std::string(hwy::TargetName(i.param));
                         });

// A token whose seg_start lies past itself sees no key: zero output, lse -inf, no gradient anywhere, no NaN.
TEST(AttentionTrainEdgeTest, TokenWithoutKeys) {
  AttentionParams p{2, 1, 4, 0.5f, 0.0f, 0};
  const int64_t T = 4, row = 8, kv = 4;
  const std::vector<int32_t> seg = {0, 0, 3, 2};  // token 2 claims to start at 3 (past itself)
  const auto q = Cast<float>(RandomFloatValues(T * row, 5, -1, 1));
  const auto k = Cast<float>(RandomFloatValues(T * kv, 6, -1, 1));
  const auto v = Cast<float>(RandomFloatValues(T * kv, 7, -1, 1));
  const auto dout = Cast<float>(RandomFloatValues(T * row, 8, -1, 1));
  std::vector<float> out(T * row, NAN), lse(T * 2, NAN), dq(T * row, NAN), dk(T * kv, NAN), dv(T * kv, NAN);
  AttentionTrainForward(p, q.data(), k.data(), v.data(), kv, T, seg.data(), out.data(), lse.data(), nullptr);
  AttentionTrainBackward(p, q.data(), k.data(), v.data(), kv, T, seg.data(), out.data(), lse.data(), dout.data(),
                         dq.data(), dk.data(), dv.data(), nullptr);
  for (int i = 0; i < row; ++i) EXPECT_EQ(out[2 * row + i], 0.0f);
  EXPECT_EQ(lse[4], -std::numeric_limits<float>::infinity());
  for (int i = 0; i < row; ++i) EXPECT_EQ(dq[2 * row + i], 0.0f);
  for (float x : dk) EXPECT_TRUE(std::isfinite(x));
  for (float x : dv) EXPECT_TRUE(std::isfinite(x));
  // Key 2 is seen only by token 3 (seg_start 2): its gradients come from token 3 alone.
  for (int i = 0; i < kv; ++i) EXPECT_NE(dv[2 * kv + i], 0.0f);
}

}  // namespace
}  // namespace pocketlm
