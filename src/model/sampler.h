// Token sampling from logits. Order as llama.cpp's default chain: repetition penalty, top-k, top-p, min-p,
// temperature, then a draw. temperature <= 0 means greedy (argmax). The random stream is a 64-bit
// SplitMix/xorshift generator of our own, so a seed gives the same text on every platform and compiler.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace pocketlm {

struct SamplingParams {
  float temperature = 0.8f;
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off (CTRL paper, Keskar et al. 2019: divide positive logits, multiply negative)
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at
  uint64_t seed = 0;

  Status Validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks the next token. `history` is every token so far (prompt + generated).
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  double NextUniform();  // [0, 1)

  SamplingParams p_;
  uint64_t state_;
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  std::vector<Candidate> cand_;
};

int32_t ArgMax(std::span<const float> logits);

}  // namespace pocketlm
