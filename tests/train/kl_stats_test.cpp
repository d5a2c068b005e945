// llama-perplexity --kl-divergence's statistics (train/kl_stats.h) on hand-made logits, checked against direct
// computations written here; its chunking (train/eval.h PlanKlChunks); and a whole run on a random model compared
// with itself and with another.
#include "train/kl_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "test_models.h"
#include "train/eval.h"

namespace pocketlm {
namespace {

std::vector<float> RandomLogits(std::mt19937& rng, int n, float spread) {
  std::normal_distribution<float> d(0.0f, spread);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// log softmax of `z` at i, in double.
double LogProb(const std::vector<float>& z, size_t i) {
  double mx = z[0];
  for (float x : z) mx = std::max(mx, static_cast<double>(x));
  double s = 0;
  for (float x : z) s += std::exp(x - mx);
  return z[i] - mx - std::log(s);
}

// Standard error of the mean with the sample standard deviation: sqrt(sum (x - mean)^2 / (n (n - 1))).
double StdErr(const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / (n * (n - 1)));
}

TEST(KlStatsTest, IdenticalDistributionsGiveZero) {
  for (KlBaseRounding rounding : {KlBaseRounding::kExact, KlBaseRounding::kLlamaFile}) {
    std::mt19937 rng(7);
    KlStats st(rounding);
    for (int i = 0; i < 40; ++i) {
      const std::vector<float> z = RandomLogits(rng, 50, 3.0f);
      st.Add(z.data(), z.data(), 50, i % 50);
    }
    const KlSummary s = st.Summarize();
    EXPECT_EQ(s.count, 40);
    EXPECT_DOUBLE_EQ(s.same_top.value, 1.0);
    EXPECT_DOUBLE_EQ(s.same_top.unc, 0.0);
    if (rounding == KlBaseRounding::kExact) {
      EXPECT_EQ(s.kld.value, 0.0);
      EXPECT_EQ(s.kld.unc, 0.0);
      for (const Percentile& p : s.kld_pct) EXPECT_EQ(p.value, 0.0f) << p.fraction;
      EXPECT_EQ(s.ln_ppl_ratio.value, 0.0);
      EXPECT_EQ(s.ppl_ratio.value, 1.0);
      EXPECT_EQ(s.ppl_q.value, s.ppl_base.value);
      EXPECT_NEAR(s.ln_ppl_ratio.unc, 0.0, 1e-9);
      EXPECT_EQ(s.p_diff_rms.value, 0.0);
      EXPECT_EQ(s.ppl_diff.value, 0.0);
      EXPECT_NEAR(s.ln_ppl_correlation, 1.0, 1e-9);
    } else {
      // 16-bit steps of 16 / 65535 nats in the reference's log-probabilities.
      EXPECT_NEAR(s.kld.value, 0.0, 1e-4);
      EXPECT_NEAR(s.ln_ppl_ratio.value, 0.0, 1e-4);
      EXPECT_NEAR(s.p_diff_rms.value, 0.0, 1e-4);
    }
  }
}

// p_base = (1/4, 3/4), p_Q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2); the tops differ (Q's first maximum is 0).
TEST(KlStatsTest, TwoTokenClosedForm) {
  const float base[2] = {0.0f, std::log(3.0f)};
  const float q[2] = {0.0f, 0.0f};
  const double kl = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  for (KlBaseRounding rounding : {KlBaseRounding::kExact, KlBaseRounding::kLlamaFile}) {
    KlStats st(rounding);
    for (int i = 0; i < 12; ++i) st.Add(base, q, 2, 1);
    const KlSummary s = st.Summarize();
    const double tol = rounding == KlBaseRounding::kExact ? 1e-7 : 1e-4;
    EXPECT_NEAR(s.kld.value, kl, tol);
    EXPECT_NEAR(s.kld_pct.front().value, kl, tol);  // maximum
    EXPECT_NEAR(s.ppl_q.value, 2.0, tol);           // p_Q(1) = 1/2 at every position
    EXPECT_NEAR(s.ppl_base.value, 4.0 / 3.0, tol);
    EXPECT_NEAR(s.ln_ppl_ratio.value, std::log(1.5), tol);
    EXPECT_NEAR(s.ppl_ratio.value, 1.5, tol);
    EXPECT_NEAR(s.p_diff.value, -0.25, tol);
    EXPECT_NEAR(s.p_diff_rms.value, 0.25, tol);
    EXPECT_EQ(s.same_top.value, 0.0);
    EXPECT_NEAR(s.kld.unc, 0.0, 1e-6);  // every position alike
  }
}

TEST(KlStatsTest, PercentilesAndMedian) {
  std::vector<float> v;
  for (int i = 0; i <= 10; ++i) v.push_back(static_cast<float>(i * i));  // sorted
  for (double f : {0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const double pos = f * 10, lo = std::floor(pos);
    const double want = v[static_cast<size_t>(lo)] +
                        (pos - lo) * (f < 1 ? v[static_cast<size_t>(lo) + 1] - v[static_cast<size_t>(lo)] : 0.0);
    EXPECT_NEAR(KlStats::PercentileOfSorted(v, static_cast<float>(f)), want, 1e-4) << f;
  }
  EXPECT_EQ(KlStats::MedianOfSorted(v), 25.0f);
  EXPECT_EQ(KlStats::MedianOfSorted({1, 2, 4, 8}), 3.0f);
}

TEST(KlStatsTest, UncertaintiesAreStandardErrors) {
  std::vector<double> a = {0.3, 1.2, 0.7, 2.5, 0.1, 0.9, 1.7, 0.4, 3.1, 0.6, 1.1, 0.8};
  std::vector<double> b = {0.2, 1.0, 0.9, 2.1, 0.3, 0.7, 1.9, 0.5, 2.6, 0.4, 1.5, 0.6};
  double s = 0, s2 = 0, sb = 0, sab = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    s += a[i];
    s2 += a[i] * a[i];
    sb += b[i];
    sab += a[i] * b[i];
  }
  const int64_t n = static_cast<int64_t>(a.size());
  const ValueUnc m = KlStats::MeanAndUnc(s, s2, n);
  EXPECT_NEAR(m.value, s / 12, 1e-12);
  EXPECT_NEAR(m.unc, StdErr(a), 1e-12);
  // Covariance of the means: sum (a - mean a)(b - mean b) / (n (n - 1)).
  const double ma = s / 12, mb = sb / 12;
  double cov = 0;
  for (size_t i = 0; i < a.size(); ++i) cov += (a[i] - ma) * (b[i] - mb);
  EXPECT_NEAR(KlStats::Covariance(s, sb, sab, n), cov / (12.0 * 11.0), 1e-12);
  // llama-perplexity reports no uncertainty for 10 values or fewer, no covariance for fewer than 10.
  EXPECT_EQ(KlStats::MeanAndUnc(s, s2, 10).unc, 0.0);
  EXPECT_EQ(KlStats::Covariance(s, sb, sab, 9), 0.0);
}

// Summarize against direct computations from the per-position values.
TEST(KlStatsTest, SummaryMatchesDirectComputation) {
  std::mt19937 rng(3);
  const int V = 16, n = 64;
  KlStats st;
  std::vector<double> nll, nll_base, diff, kld, same, p_diff;
  for (int i = 0; i < n; ++i) {
    const std::vector<float> base = RandomLogits(rng, V, 2.0f);
    std::vector<float> q = base;
    const std::vector<float> noise = RandomLogits(rng, V, 0.7f);
    for (int k = 0; k < V; ++k) q[static_cast<size_t>(k)] += noise[static_cast<size_t>(k)];
    const size_t tok = static_cast<size_t>(i % V);
    st.Add(base.data(), q.data(), V, static_cast<int32_t>(tok));
    nll.push_back(-LogProb(q, tok));
    nll_base.push_back(-LogProb(base, tok));
    diff.push_back(nll.back() - nll_base.back());
    double k = 0;
    for (size_t j = 0; j < static_cast<size_t>(V); ++j) {
      k += std::exp(LogProb(base, j)) * (LogProb(base, j) - LogProb(q, j));
    }
    kld.push_back(k);
    same.push_back(std::max_element(base.begin(), base.end()) - base.begin() ==
                   std::max_element(q.begin(), q.end()) - q.begin());
    p_diff.push_back(std::exp(-nll.back()) - std::exp(-nll_base.back()));
  }
  const auto mean = [](const std::vector<double>& x) {
    return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
  };
  const KlSummary s = st.Summarize();
  EXPECT_EQ(s.count, n);
  EXPECT_NEAR(s.ppl_q.value, std::exp(mean(nll)), 1e-9);
  EXPECT_NEAR(s.ppl_q.unc, std::exp(mean(nll)) * StdErr(nll), 1e-9);
  EXPECT_NEAR(s.ppl_base.value, std::exp(mean(nll_base)), 1e-9);
  EXPECT_NEAR(s.ppl_base.unc, std::exp(mean(nll_base)) * StdErr(nll_base), 1e-9);
  // The ln-ratio uncertainty from the variances and covariance is the standard error of the paired differences.
  EXPECT_NEAR(s.ln_ppl_ratio.value, mean(diff), 1e-9);
  EXPECT_NEAR(s.ln_ppl_ratio.unc, StdErr(diff), 1e-9);
  EXPECT_NEAR(s.ppl_ratio.value, std::exp(mean(diff)), 1e-9);
  EXPECT_NEAR(s.ppl_ratio.unc, std::exp(mean(diff)) * StdErr(diff), 1e-9);
  EXPECT_NEAR(s.kld.value, mean(kld), 1e-9);
  EXPECT_NEAR(s.kld.unc, StdErr(kld), 1e-9);
  const double p = mean(same);
  EXPECT_NEAR(s.same_top.value, p, 1e-12);
  EXPECT_NEAR(s.same_top.unc, std::sqrt(p * (1 - p) / (n - 1)), 1e-12);
  EXPECT_NEAR(s.p_diff.value, mean(p_diff), 1e-7);
  std::vector<double> p2;
  for (double d : p_diff) p2.push_back(d * d);
  EXPECT_NEAR(s.p_diff_rms.value, std::sqrt(mean(p2)), 1e-7);
  EXPECT_NEAR(s.p_diff_rms.unc, 0.5 / std::sqrt(mean(p2)) * StdErr(p2), 1e-7);
  std::sort(kld.begin(), kld.end());
  EXPECT_NEAR(s.kld_pct.front().value, kld.back(), 1e-6);
  EXPECT_NEAR(s.kld_pct.back().value, kld.front(), 1e-6);
  EXPECT_NEAR(s.kld_pct[5].value, 0.5 * (kld[31] + kld[32]), 1e-6);  // median of 64
  EXPECT_EQ(s.kld_pct[5].fraction, 0.5);
  // 99 %: position 0.99 * 63 = 62.37.
  EXPECT_NEAR(s.kld_pct[2].value, kld[62] + 0.37 * (kld[63] - kld[62]), 1e-5);

  // The llama-perplexity rounding changes these by the reference's 16-bit steps only.
  std::mt19937 rng2(3);
  KlStats ll(KlBaseRounding::kLlamaFile);
  for (int i = 0; i < n; ++i) {
    const std::vector<float> base = RandomLogits(rng2, V, 2.0f);
    std::vector<float> q = base;
    const std::vector<float> noise = RandomLogits(rng2, V, 0.7f);
    for (int k = 0; k < V; ++k) q[static_cast<size_t>(k)] += noise[static_cast<size_t>(k)];
    ll.Add(base.data(), q.data(), V, i % V);
  }
  const KlSummary l = ll.Summarize();
  EXPECT_NEAR(l.kld.value, s.kld.value, 1e-4);
  EXPECT_NEAR(l.ppl_base.value, s.ppl_base.value, 1e-3 * s.ppl_base.value);
  EXPECT_NEAR(l.ppl_q.value, s.ppl_q.value, 1e-5 * s.ppl_q.value);
  EXPECT_EQ(l.same_top.value, s.same_top.value);
}

// perplexity.cpp: n_chunk = min(--chunks, n_tokens / n_ctx), first = n_ctx / 2, n_ctx - 1 - first scored per chunk.
TEST(KlChunksTest, MatchesLlamaPerplexity) {
  auto c = PlanKlChunks(5000, 512, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 9);
  EXPECT_EQ(c->first, 256);
  EXPECT_EQ(c->ScoredPerChunk(), 255);
  EXPECT_EQ(c->ScoredTotal(), 9 * 255);
  c = PlanKlChunks(5000, 512, 4);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 4);
  c = PlanKlChunks(5000, 512, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 9);
  c = PlanKlChunks(1024, 512, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 2);
  c = PlanKlChunks(20, 5, 0);  // odd context: first 2, positions 2 and 3 scored
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_chunks, 4);
  EXPECT_EQ(c->first, 2);
  EXPECT_EQ(c->ScoredPerChunk(), 2);

  auto short_text = PlanKlChunks(300, 512, 0);
  ASSERT_FALSE(short_text.ok());
  EXPECT_NE(short_text.status().message().find("300 tokens"), std::string::npos) << short_text.status().message();
  EXPECT_NE(short_text.status().message().find("--ctx 300"), std::string::npos) << short_text.status().message();
  EXPECT_FALSE(PlanKlChunks(300, 2, 0).ok());
}

class KlRunTest : public ::testing::Test {
 protected:
  static std::unique_ptr<Model> Load(uint32_t seed) {
    mkmodel::RandomModelOptions o;
    o.seed = seed;
    o.n_layer = 1;
    auto m = Model::Load(testing_util::RandomModel(o));
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? std::move(m).value() : nullptr;
  }
  static std::unique_ptr<Context> MakeContext(const Model& m, int n_ctx) {
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    auto c = Context::Create(m, p);
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static std::vector<int32_t> Tokens(const Model& m) {
    auto t = m.tokenizer().Encode(
        "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet forest. "
        "Small models make quick tests.",
        true, false);
    EXPECT_TRUE(t.ok());
    return t.ok() ? t.value() : std::vector<int32_t>{};
  }
};

TEST_F(KlRunTest, ModelAgainstItself) {
  auto m = Load(1);
  ASSERT_TRUE(m);
  const int n_ctx = 16;
  auto a = MakeContext(*m, n_ctx), b = MakeContext(*m, n_ctx);
  const std::vector<int32_t> toks = Tokens(*m);
  auto plan = PlanKlChunks(static_cast<int64_t>(toks.size()), n_ctx, 3);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->n_chunks, 3);
  int calls = 0;
  auto r = KlDivergenceChunked(*a, *b, toks, *plan, KlBaseRounding::kExact, [&](int done, int total, const KlStats&) {
    EXPECT_EQ(++calls, done);
    EXPECT_EQ(total, 3);
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(calls, 3);
  const KlSummary s = r->Summarize();
  EXPECT_EQ(s.count, 3 * 7);  // 16 - 1 - 8 per chunk
  EXPECT_EQ(s.kld.value, 0.0);
  EXPECT_EQ(s.kld_pct.front().value, 0.0f);
  EXPECT_EQ(s.same_top.value, 1.0);
  EXPECT_EQ(s.ppl_ratio.value, 1.0);
  EXPECT_EQ(s.ppl_q.value, s.ppl_base.value);

  // PPL(base) over the scored positions, from whole chunks evaluated here (first token BOS when the vocabulary adds
  // it): log p(token[j + 1]) at j = 8 .. 14 of each chunk.
  const Tokenizer& tok = m->tokenizer();
  EXPECT_TRUE(tok.add_bos());  // the chunks' first tokens are replaced
  double nll = 0;
  int count = 0;
  std::vector<float> logits;
  for (int c = 0; c < 3; ++c) {
    std::vector<int32_t> chunk(toks.begin() + c * n_ctx, toks.begin() + (c + 1) * n_ctx);
    if (tok.add_bos()) chunk[0] = tok.bos();
    a->Reset();
    ASSERT_TRUE(a->Eval(chunk, true, &logits).ok());
    const size_t V = static_cast<size_t>(m->config().n_vocab);
    for (int j = 8; j <= 14; ++j) {
      std::vector<float> row(logits.begin() + static_cast<std::ptrdiff_t>(j * V),
                             logits.begin() + static_cast<std::ptrdiff_t>((j + 1) * V));
      nll -= LogProb(row, static_cast<size_t>(toks[static_cast<size_t>(c * n_ctx + j + 1)]));
      ++count;
    }
  }
  EXPECT_NEAR(std::log(s.ppl_base.value), nll / count, 1e-5);

  // Scored positions evaluated 3 at a time (each model continuing its cache): the same statistics.
  KlChunks sliced = *plan;
  sliced.rows_per_eval = 3;
  auto r3 = KlDivergenceChunked(*a, *b, toks, sliced, KlBaseRounding::kExact);
  ASSERT_TRUE(r3.ok()) << r3.status().message();
  EXPECT_EQ(r3->count(), s.count);
  EXPECT_NEAR(std::log(r3->Summarize().ppl_base.value), nll / count, 1e-5);
}

TEST_F(KlRunTest, DifferentModelsAndErrors) {
  auto m1 = Load(1), m2 = Load(2);
  ASSERT_TRUE(m1 && m2);
  auto a = MakeContext(*m1, 16), b = MakeContext(*m2, 16);
  const std::vector<int32_t> toks = Tokens(*m1);
  auto plan = PlanKlChunks(static_cast<int64_t>(toks.size()), 16, 2);
  ASSERT_TRUE(plan.ok());
  auto r = KlDivergenceChunked(*a, *b, toks, *plan, KlBaseRounding::kExact);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const KlSummary s = r->Summarize();
  EXPECT_GT(s.kld.value, 0.0);
  EXPECT_EQ(s.count, 14);
  EXPECT_TRUE(std::isfinite(s.ppl_ratio.unc));
  EXPECT_TRUE(std::isfinite(s.p_diff_rms.unc));

  // A context smaller than the chunk is refused.
  auto small = MakeContext(*m1, 8);
  EXPECT_FALSE(KlDivergenceChunked(*small, *b, toks, *plan, KlBaseRounding::kExact).ok());
}

}  // namespace
}  // namespace pocketlm
