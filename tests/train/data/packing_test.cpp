// Packing: every trainable token of an epoch is the target of exactly one position, seg_start / pos describe the
// examples, truncation is counted, the order depends only on the seed, and a saved cursor resumes exactly.
#include "train/data/packing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace pocketlm {
namespace {

std::vector<TrainExample> RandomExamples(int n, int max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TrainExample> out(n);
  for (TrainExample& ex : out) {
    const int len = 1 + static_cast<int>(rng() % max_len);
    for (int i = 0; i < len; ++i) {
      ex.tokens.push_back(static_cast<int32_t>(1 + rng() % 1000));
      ex.trainable.push_back(i > 0 && rng() % 3 != 0 ? 1 : 0);
    }
  }
  return out;
}

SequencePacker MakePacker(const std::vector<TrainExample>& examples, int32_t seq_len, uint64_t seed) {
  auto p = SequencePacker::Create(examples, seq_len, seed, /*pad_id=*/0);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return std::move(p).value();
}

// Checks one sequence against the examples it claims to hold; adds (example, token index) of each target.
void CheckSequence(const PackedSequence& s, const std::vector<TrainExample>& examples, int32_t seq_len,
                   std::set<std::pair<int32_t, int32_t>>* targets) {
  ASSERT_EQ(s.tokens.size(), static_cast<size_t>(seq_len));
  ASSERT_EQ(s.targets.size(), static_cast<size_t>(seq_len));
  ASSERT_EQ(s.seg_start.size(), static_cast<size_t>(seq_len));
  ASSERT_EQ(s.pos.size(), static_cast<size_t>(seq_len));
  ASSERT_FALSE(s.examples.empty());
  int32_t t = 0;
  for (int32_t id : s.examples) {
    const TrainExample& ex = examples[id];
    const int32_t len = std::min<int32_t>(static_cast<int32_t>(ex.tokens.size()), seq_len);
    const int32_t start = t;
    for (int32_t j = 0; j < len; ++j, ++t) {
      ASSERT_EQ(s.tokens[t], ex.tokens[j]);
      ASSERT_EQ(s.seg_start[t], start);
      ASSERT_EQ(s.pos[t], j);
      const bool target = j + 1 < len && ex.trainable[j + 1];
      ASSERT_EQ(s.targets[t], target ? ex.tokens[j + 1] : -1) << "t " << t;
      if (target) {
        ASSERT_TRUE(targets->insert({id, j + 1}).second) << "token targeted twice";
      }
    }
  }
  ASSERT_EQ(t, s.n_tokens);
  for (; t < seq_len; ++t) {  // padding: one segment, no targets
    ASSERT_EQ(s.tokens[t], 0);
    ASSERT_EQ(s.targets[t], -1);
    ASSERT_EQ(s.seg_start[t], s.n_tokens);
    ASSERT_EQ(s.pos[t], t - s.n_tokens);
  }
}

TEST(PackingTest, EveryTrainableTokenIsExactlyOneTargetPerEpoch) {
  const int32_t seq_len = 32;
  std::vector<TrainExample> examples = RandomExamples(300, 45, 1);  // some longer than seq_len
  SequencePacker p = MakePacker(examples, seq_len, 7);
  const int64_t n_seq = p.SequencesInEpoch(0);
  std::set<std::pair<int32_t, int32_t>> targets;
  std::vector<int> seen(examples.size(), 0);
  PackedSequence s;
  int32_t prev_used = 0;
  for (int64_t i = 0; i < n_seq; ++i) {
    EXPECT_EQ(p.cursor().epoch, 0);
    p.Next(&s);
    ASSERT_NO_FATAL_FAILURE(CheckSequence(s, examples, seq_len, &targets));
    for (int32_t id : s.examples) ++seen[id];
    // Sequential packing: a sequence was closed only because its successor's first example did not fit.
    if (i > 0) {
      const auto first_len = static_cast<int32_t>(examples[s.examples[0]].tokens.size());
      EXPECT_GT(prev_used + std::min(first_len, seq_len), seq_len);
    }
    prev_used = s.n_tokens;
  }
  EXPECT_EQ(p.cursor().epoch, 1);  // the epoch ended exactly after SequencesInEpoch(0) sequences
  EXPECT_EQ(p.cursor().index, 0);
  for (int c : seen) EXPECT_EQ(c, 1);
  std::set<std::pair<int32_t, int32_t>> want;
  int64_t truncated = 0;
  for (size_t id = 0; id < examples.size(); ++id) {
    const auto& ex = examples[id];
    truncated += ex.tokens.size() > static_cast<size_t>(seq_len);
    for (size_t j = 1; j < std::min<size_t>(ex.tokens.size(), seq_len); ++j) {
      if (ex.trainable[j]) want.insert({static_cast<int32_t>(id), static_cast<int32_t>(j)});
    }
  }
  EXPECT_EQ(targets, want);
  EXPECT_EQ(p.truncated(), truncated);
  EXPECT_GT(truncated, 0);
}

TEST(PackingTest, ShortExamplesShareSequencesAndLongOnesAreTruncated) {
  std::vector<TrainExample> examples(3);
  examples[0] = {{1, 2, 3}, {0, 1, 1}};
  examples[1] = {{4, 5}, {0, 1}};
  examples[2] = {std::vector<int32_t>(10, 9), std::vector<uint8_t>(10, 1)};
  SequencePacker p = MakePacker(examples, 8, 3);
  EXPECT_EQ(p.truncated(), 1);
  EXPECT_EQ(p.truncated_tokens(), 2);
  EXPECT_EQ(p.SequencesInEpoch(0), 2);  // {3 + 2 tokens} and {8 of 10}, in some order
  PackedSequence s;
  for (int i = 0; i < 2; ++i) {
    p.Next(&s);
    if (s.examples.size() == 1) {
      EXPECT_EQ(s.examples[0], 2);
      EXPECT_EQ(s.n_tokens, 8);
      EXPECT_EQ(s.targets, (std::vector<int32_t>{9, 9, 9, 9, 9, 9, 9, -1}));
    } else {
      EXPECT_EQ(s.n_tokens, 5);
      EXPECT_EQ(s.examples.size(), 2u);
    }
  }
}

TEST(PackingTest, DeterministicBySeedAndResumable) {
  std::vector<TrainExample> examples = RandomExamples(50, 20, 2);
  auto run = [&](uint64_t seed, int n) {
    SequencePacker p = MakePacker(examples, 24, seed);
    std::vector<std::vector<int32_t>> out;
    PackedSequence s;
    for (int i = 0; i < n; ++i) {
      p.Next(&s);
      out.push_back(s.tokens);
    }
    return out;
  };
  const auto a = run(11, 60), b = run(11, 60), c = run(12, 60);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  // Epochs are shuffled differently.
  SequencePacker p = MakePacker(examples, 24, 11);
  const int64_t e0 = p.SequencesInEpoch(0);
  std::vector<int32_t> order0, order1;
  PackedSequence s;
  for (int64_t i = 0; i < e0; ++i) {
    p.Next(&s);
    order0.insert(order0.end(), s.examples.begin(), s.examples.end());
  }
  const int64_t e1 = p.SequencesInEpoch(1);
  for (int64_t i = 0; i < e1; ++i) {
    p.Next(&s);
    order1.insert(order1.end(), s.examples.begin(), s.examples.end());
  }
  EXPECT_EQ(p.cursor().epoch, 2);
  EXPECT_NE(order0, order1);

  // Resume at every step of the first 60, including across epoch ends: the continuation is identical.
  for (int stop : {0, 1, 7, static_cast<int>(e0) - 1, static_cast<int>(e0), 59}) {
    SequencePacker first = MakePacker(examples, 24, 11);
    for (int i = 0; i < stop; ++i) first.Next(&s);
    const PackCursor saved = first.cursor();
    SequencePacker second = MakePacker(examples, 24, 999);  // the seed comes from the cursor
    ASSERT_TRUE(second.Seek(saved).ok());
    PackedSequence x, y;
    for (int i = 0; i < 10; ++i) {
      first.Next(&x);
      second.Next(&y);
      ASSERT_EQ(x.tokens, y.tokens) << "stop " << stop << " step " << i;
      ASSERT_EQ(x.examples, y.examples);
      ASSERT_EQ(first.cursor().index, second.cursor().index);
    }
  }
}

TEST(PackingTest, Errors) {
  std::vector<TrainExample> none;
  EXPECT_FALSE(SequencePacker::Create(none, 8, 0).ok());
  std::vector<TrainExample> one = {{{1, 2}, {0, 1}}};
  EXPECT_FALSE(SequencePacker::Create(one, 1, 0).ok());
  EXPECT_FALSE(SequencePacker::Create(one, 8, 0, -1).ok());
  std::vector<TrainExample> bad = {{{1, 2}, {0}}};
  EXPECT_FALSE(SequencePacker::Create(bad, 8, 0).ok());
  auto p = SequencePacker::Create(one, 8, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Seek({0, 0, 1}).code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(p->Seek({0, -1, 0}).code(), ErrorCode::kOutOfRange);
  EXPECT_TRUE(p->Seek({5, 3, 0}).ok());
  PackedSequence s;
  p->Next(&s);  // one example: every sequence is an epoch
  EXPECT_EQ(p->cursor().epoch, 4);
  EXPECT_EQ(s.targets, (std::vector<int32_t>{2, -1, -1, -1, -1, -1, -1, -1}));
}

}  // namespace
}  // namespace pocketlm
