#include <fstream>
// KV cache and batching invariants on the golden models: the logits of a position must not depend on how the
// prompt was split into chunks, on incremental decoding, on the thread count, or on adapters set and unset.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "model/context.h"

namespace pocketlm {
namespace {

std::string Golden() {
  const char* d = std::getenv("PLM_GOLDEN_DIR");
  return d ? d : "";
}

class ContextTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = Golden() + "/models/" + GetParam() + ".gguf";
    if (Golden().empty() || !std::ifstream(path_)) GTEST_SKIP() << "golden models not found (../shared/golden)";
    auto m = Model::Load(path_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
  }
  std::vector<float> Run(const std::vector<int32_t>& toks, int n_batch, int threads, bool one_by_one) {
    ContextParams p;
    p.n_batch = n_batch;
    p.n_threads = threads;
    p.n_ctx = 64;
    auto ctx = Context::Create(*model_, p);
    EXPECT_TRUE(ctx.ok());
    std::vector<float> all, step;
    if (!one_by_one) {
      EXPECT_TRUE((*ctx)->Eval(toks, true, &all).ok());
      return all;
    }
    for (int32_t t : toks) {
      EXPECT_TRUE((*ctx)->Eval(std::span<const int32_t>(&t, 1), true, &step).ok());
      all.insert(all.end(), step.begin(), step.end());
    }
    return all;
  }
  std::string path_;
  std::unique_ptr<Model> model_;
};

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST_P(ContextTest, ChunkingAndIncrementalDecodeGiveTheSameLogits) {
  std::vector<int32_t> toks;
  for (int i = 0; i < 21; ++i) toks.push_back(1 + (i * 37) % 300);
  const auto full = Run(toks, 64, 2, false);
  // Different summation order across chunk sizes changes only the last bits.
  EXPECT_LT(MaxAbsDiff(full, Run(toks, 5, 2, false)), 1e-4);
  EXPECT_LT(MaxAbsDiff(full, Run(toks, 64, 2, true)), 1e-4);
  EXPECT_LT(MaxAbsDiff(full, Run(toks, 64, 1, false)), 1e-4);
  EXPECT_LT(MaxAbsDiff(full, Run(toks, 3, 3, false)), 1e-4);
}

TEST_P(ContextTest, RejectsOutOfRangeTokensAndOverlongInput) {
  ContextParams p;
  p.n_ctx = 8;
  auto ctx = Context::Create(*model_, p);
  ASSERT_TRUE(ctx.ok());
  std::vector<float> logits;
  std::vector<int32_t> bad = {1, model_->config().n_vocab};
  Status st = (*ctx)->Eval(bad, false, &logits);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  std::vector<int32_t> neg = {-1};
  EXPECT_FALSE((*ctx)->Eval(neg, false, &logits).ok());
  std::vector<int32_t> longer(9, 1);
  st = (*ctx)->Eval(longer, false, &logits);
  EXPECT_EQ(st.code(), ErrorCode::kOutOfRange);
  EXPECT_NE(st.message().find("context"), std::string::npos);
  EXPECT_EQ((*ctx)->n_past(), 0);
}

INSTANTIATE_TEST_SUITE_P(Golden, ContextTest,
                         ::testing::Values("llama-tiny", "qwen2-tiny", "phi3-tiny", "gemma2-tiny", "llama-kq-F16"));

TEST(ContextAdapters, SwitchingAdaptersMatchesFreshContext) {
  const std::string g = Golden();
  if (g.empty() || !std::ifstream(g + "/models/llama-tiny.gguf")) GTEST_SKIP() << "golden models not found";
  auto m = Model::Load(g + "/models/llama-tiny.gguf");
  ASSERT_TRUE(m.ok());
  auto ad = LoraAdapter::Load(g + "/models/llama-tiny.lora-r8.gguf");
  ASSERT_TRUE(ad.ok()) << ad.status().message();
  std::vector<int32_t> toks = {1, 450, 4996, 17354};
  ContextParams p;
  p.n_ctx = 16;
  auto fresh = Context::Create(**m, p);
  auto reused = Context::Create(**m, p);
  std::vector<float> a, b, base;
  ASSERT_TRUE((*reused)->Eval(toks, true, &base).ok());  // no adapter
  ASSERT_TRUE((*fresh)->SetAdapters({{ad->get(), 0.7f}}).ok());
  ASSERT_TRUE((*fresh)->Eval(toks, true, &a).ok());
  ASSERT_TRUE((*reused)->SetAdapters({{ad->get(), 0.7f}}).ok());
  ASSERT_TRUE((*reused)->Eval(toks, true, &b).ok());
  EXPECT_EQ(a, b);
  EXPECT_GT(MaxAbsDiff(a, base), 1e-3);  // the adapter does change the output
  // Scale 0 is the base model.
  ASSERT_TRUE((*reused)->SetAdapters({{ad->get(), 0.0f}}).ok());
  ASSERT_TRUE((*reused)->Eval(toks, true, &b).ok());
  EXPECT_LT(MaxAbsDiff(b, base), 1e-6);
}

}  // namespace
}  // namespace pocketlm
