// LoRA gradient checks shared by the training tests: random B factors, and the largest gradient entries against
// central differences of the loss of a whole step.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "train/lora_set.h"
#include "train/rng.h"

namespace pocketlm::train_test {

// B factors uniform in [-0.2, 0.2] (SplitMix64 seed 5) rather than LoRA's initial zeros, under which the A factors
// would get no gradient.
inline void RandomizeLoraB(LoraSet& set) {
  SplitMix64 rng(5);
  for (LoraModule& m : set.modules()) {
    for (float& b : m.b) b = (2.0f * rng.NextFloat() - 1.0f) * 0.2f;
  }
}

// The three largest gradient entries of m's A and then B factor against central differences (h = 0.02) of `loss`,
// which runs the step again and returns its loss. A float forward pass supports only a few digits of slope. `tag`
// starts the failure messages.
template <class Loss>
void ExpectLargestLoraGradientsMatchFiniteDifferences(LoraModule& m, Loss&& loss, const std::string& tag) {
  for (const bool check_a : {true, false}) {
    std::vector<float>& w = check_a ? m.a : m.b;
    const std::vector<float> grad = check_a ? m.grad_a : m.grad_b;
    std::vector<size_t> idx(grad.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + 3, idx.end(),
                      [&](size_t x, size_t y) { return std::fabs(grad[x]) > std::fabs(grad[y]); });
    for (int k = 0; k < 3; ++k) {
      const size_t i = idx[static_cast<size_t>(k)];
      const float orig = w[i];
      const float h = 2e-2f;
      w[i] = orig + h;
      const double up = loss();
      w[i] = orig - h;
      const double down = loss();
      w[i] = orig;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(grad[i], numeric, 0.03 * std::fabs(numeric) + 1e-3)
          << tag << (check_a ? "A" : "B") << "[" << i << "] of " << m.base_name;
    }
  }
}

}  // namespace pocketlm::train_test
