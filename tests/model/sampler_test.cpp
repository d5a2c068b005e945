#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace pocketlm {
namespace {

std::vector<float> Logits() {
  return {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};
}

TEST(Sampler, GreedyPicksArgmax) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.Sample(Logits(), {}), 1);
}

TEST(Sampler, RepetitionPenaltyDemotesRecentTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;  // 3.0 -> 1.5, so 2.9 wins
  Sampler s(p);
  std::vector<int32_t> history = {1};
  EXPECT_EQ(s.Sample(Logits(), history), 4);
  // Outside the window the penalty does not apply.
  p.repeat_last_n = 1;
  Sampler s2(p);
  std::vector<int32_t> old = {1, 0};
  EXPECT_EQ(s2.Sample(Logits(), old), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 42;
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.Sample(Logits(), {}));
    sb.push_back(b.Sample(Logits(), {}));
    sc.push_back(c.Sample(Logits(), {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 1;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    Sampler s(p);
    EXPECT_EQ(s.Sample(Logits(), {}), 1);
  }
}

TEST(Sampler, TopPKeepsSmallestNucleus) {
  // probabilities of {0, 10, 9.9, -inf-ish}: tokens 1 and 2 hold almost all the mass.
  std::vector<float> l = {0.0f, 10.0f, 9.9f, -20.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.min_p = 0;
  p.top_p = 0.5f;  // token 1 alone has > 0.5
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    Sampler s(p);
    EXPECT_EQ(s.Sample(l, {}), 1);
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  std::vector<float> l = {0.0f, 5.0f, 4.9f, 1.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // p(3)/p(1) = e^-4, p(0)/p(1) = e^-5: dropped; p(2)/p(1) = e^-0.1: kept
  std::map<int32_t, int> counts;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    p.seed = seed;
    Sampler s(p);
    counts[s.Sample(l, {})]++;
  }
  EXPECT_EQ(counts.count(0), 0u);
  EXPECT_EQ(counts.count(3), 0u);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Sampler, TemperatureMatchesSoftmaxFrequencies) {
  // Two tokens with logits 0 and ln 3 at temperature 1: expect 3:1 odds.
  std::vector<float> l = {0.0f, std::log(3.0f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 9;
  Sampler s(p);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += s.Sample(l, {}) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.015);  // 5 sigma of a binomial(20000, 0.75)
}

TEST(Sampler, ValidateRejectsBadValues) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_FALSE(p.Validate().ok());
  p = SamplingParams();
  p.temperature = -1;
  EXPECT_FALSE(p.Validate().ok());
  p = SamplingParams();
  p.min_p = 1.0f;
  EXPECT_FALSE(p.Validate().ok());
  EXPECT_TRUE(SamplingParams().Validate().ok());
}

}  // namespace
}  // namespace pocketlm
