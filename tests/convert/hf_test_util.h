// Shared helpers of the Hugging Face conversion tests: the golden directory and running a model on text. Models the
// tests make themselves come from test_models.h (TinyShape: llama-tiny's shape, in llama's or qwen2's layout).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "test_models.h"

namespace pocketlm::testing_util {

inline std::filesystem::path GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(PLM_DEFAULT_GOLDEN_DIR);
}

inline std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Logits at every position of `tokens`: (n_tokens, n_vocab).
inline std::vector<float> AllLogits(const Model& m, const std::vector<int32_t>& tokens) {
  ContextParams cp;
  cp.n_threads = 2;
  cp.n_ctx = 256;
  auto ctx = Context::Create(m, cp);
  EXPECT_TRUE(ctx.ok()) << ctx.status().message();
  std::vector<float> logits;
  if (!ctx.ok()) return logits;
  Status s = (*ctx)->Eval(tokens, /*all_logits=*/true, &logits);
  EXPECT_TRUE(s.ok()) << s.message();
  return logits;
}

// max |a - b| / sd(a), the golden README's "rel".
inline double MaxRel(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return 1e30;
  double mean = 0, var = 0, worst = 0;
  for (float x : a) mean += x;
  mean /= static_cast<double>(a.size());
  for (float x : a) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / static_cast<double>(a.size()));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / sd);
  return worst;
}

}  // namespace pocketlm::testing_util
