// The generation loop (model/generator.h): stepping it by hand gives what Generate gives; stop strings, max_tokens,
// a full context and a reused prompt prefix end or shape the reply as the header says; bad requests are refused.
#include "model/generator.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/model.h"
#include "test_models.h"

namespace pocketlm {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::Load(testing_util::RandomModel());
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value().release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  static std::unique_ptr<Context> NewContext(int n_ctx = 256) {
    ContextParams cp;
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    auto c = Context::Create(*model_, cp);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static std::vector<int32_t> Prompt(const std::string& text = "Once upon a time there was a") {
    return model_->tokenizer().Encode(text, true, true).value();
  }
  struct Reply {
    std::string text;
    std::vector<int32_t> tokens;
    GenerateStats stats;
  };
  static Reply RunGenerate(const GenerateParams& p, const std::vector<int32_t>& prompt, int n_ctx = 256) {
    auto ctx = NewContext(n_ctx);
    Reply r;
    auto st = Generate(
        *ctx, prompt, p,
        [&r](std::string_view t) {
          r.text += t;
          return true;
        },
        &r.tokens);
    EXPECT_TRUE(st.ok()) << st.status().message();
    if (st.ok()) r.stats = st.value();
    return r;
  }
  static GenerateParams Sampled(int n, uint64_t seed) {
    GenerateParams p;
    p.n_predict = n;
    p.sampling.temperature = 1.0f;
    p.sampling.top_k = 0;
    p.sampling.top_p = 1.0f;
    p.sampling.min_p = 0.0f;
    p.sampling.seed = seed;
    p.stop_at_end_of_generation = false;  // a random model may end early; these tests want whole replies
    return p;
  }

  static Model* model_;
};
Model* GeneratorTest::model_ = nullptr;

// Drives a Generator by hand: prefill chunks of 3, then Next / Decode.
std::string Step(Context& ctx, const std::vector<int32_t>& prompt, GeneratorParams p, size_t n_cached,
                 std::vector<int32_t>* tokens, StopReason* reason) {
  p.prefill_chunk = 3;
  auto g = Generator::Create(ctx, prompt, p, n_cached);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return "";
  std::string text;
  int n_prefill_steps = 0;
  while (g->prefilling()) {
    EXPECT_TRUE(g->Prefill().ok());
    ++n_prefill_steps;
  }
  EXPECT_EQ(n_prefill_steps, static_cast<int>((prompt.size() - n_cached + 2) / 3));
  int32_t token = 0;
  while (!g->Next(&token, &text)) EXPECT_TRUE(g->Decode(token).ok());
  text += g->Finish();
  *tokens = g->generated();
  *reason = g->reason();
  return text;
}

TEST_F(GeneratorTest, SteppedByHandGivesWhatGenerateGives) {
  const std::vector<int32_t> prompt = Prompt();
  for (uint64_t seed : {1u, 2u, 3u}) {
    const Reply want = RunGenerate(Sampled(24, seed), prompt);
    ASSERT_EQ(want.tokens.size(), 24u);
    GeneratorParams p;
    p.max_tokens = 24;
    p.sampling = Sampled(24, seed).sampling;
    p.stop_at_end_of_generation = false;
    auto ctx = NewContext();
    std::vector<int32_t> tokens;
    StopReason reason = StopReason::kNone;
    EXPECT_EQ(Step(*ctx, prompt, p, 0, &tokens, &reason), want.text) << seed;
    EXPECT_EQ(tokens, want.tokens);
    EXPECT_EQ(reason, StopReason::kMaxTokens);
    EXPECT_EQ(want.stats.reason, StopReason::kMaxTokens);
    // The last token is not evaluated: the context holds the prompt and all but one generated token.
    EXPECT_EQ(ctx->n_past(), static_cast<int>(prompt.size() + tokens.size() - 1));
  }
}

TEST_F(GeneratorTest, AReusedPromptPrefixGivesTheSameReply) {
  const std::vector<int32_t> prompt = Prompt();
  const Reply want = RunGenerate(Sampled(16, 7), prompt);
  for (size_t n_cached : {size_t{1}, prompt.size() / 2, prompt.size() - 1}) {
    auto ctx = NewContext();
    std::vector<float> logits;
    ASSERT_TRUE(ctx->Eval(std::span<const int32_t>(prompt.data(), n_cached), false, &logits).ok());
    GeneratorParams p;
    p.max_tokens = 16;
    p.sampling = Sampled(16, 7).sampling;
    p.stop_at_end_of_generation = false;
    std::vector<int32_t> tokens;
    StopReason reason = StopReason::kNone;
    EXPECT_EQ(Step(*ctx, prompt, p, n_cached, &tokens, &reason), want.text) << n_cached;
    EXPECT_EQ(tokens, want.tokens) << n_cached;
  }
}

// A stop string that spans token boundaries ends the reply before it, and no streamed piece ever showed part of it.
TEST_F(GeneratorTest, StopStringEndsTheReplyUnseen) {
  const std::vector<int32_t> prompt = Prompt();
  const Reply full = RunGenerate(Sampled(40, 11), prompt);
  ASSERT_GE(full.text.size(), 20u) << full.text;
  // A stop string made of the end of one token's text and the start of a later one's.
  std::string before;  // the text of the first 5 tokens
  {
    StreamingDetokenizer d(model_->tokenizer(), false);
    for (int i = 0; i < 5; ++i) before += d.Push(full.tokens[i]);
  }
  ASSERT_GE(before.size(), 2u);
  ASSERT_GT(full.text.size(), before.size() + 3);
  const std::string stop = full.text.substr(before.size() - 1, 4);
  const size_t at = full.text.find(stop);
  ASSERT_NE(at, std::string::npos);

  GenerateParams p = Sampled(40, 11);
  p.stop = {stop, "a stop string that never comes"};
  auto ctx = NewContext();
  std::string text;
  std::vector<std::string> pieces;
  auto st = Generate(*ctx, prompt, p, [&](std::string_view t) {
    pieces.emplace_back(t);
    text += t;
    return true;
  });
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(text, full.text.substr(0, at));
  EXPECT_EQ(st->reason, StopReason::kStopString);
  EXPECT_LT(st->n_generated, 40);
  for (const std::string& piece : pieces) EXPECT_EQ(piece.find(stop), std::string::npos);
}

TEST_F(GeneratorTest, MaxTokensZeroOnlyEvaluatesThePrompt) {
  const std::vector<int32_t> prompt = Prompt();
  const Reply r = RunGenerate(Sampled(0, 1), prompt);
  EXPECT_EQ(r.stats.n_generated, 0);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.stats.reason, StopReason::kMaxTokens);
}

// With room for two more positions after the prompt, three tokens come out: the third is sampled from the logits
// of the last position and shown, but there is no position left to evaluate it.
TEST_F(GeneratorTest, AFullContextEndsTheReply) {
  const std::vector<int32_t> prompt = Prompt();
  const Reply r = RunGenerate(Sampled(50, 5), prompt, static_cast<int>(prompt.size()) + 2);
  EXPECT_EQ(r.stats.n_generated, 3);
  EXPECT_EQ(r.stats.reason, StopReason::kContextFull);
}

TEST_F(GeneratorTest, TheCallerMayStopItAndTheLastTokenIsNotEvaluated) {
  const std::vector<int32_t> prompt = Prompt();
  auto ctx = NewContext();
  int calls = 0;
  std::vector<int32_t> tokens;
  auto st = Generate(
      *ctx, prompt, Sampled(30, 3), [&](std::string_view) { return ++calls < 4; }, &tokens);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(st->reason, StopReason::kNone);
  EXPECT_EQ(ctx->n_past(), static_cast<int>(prompt.size() + tokens.size() - 1));
}

TEST_F(GeneratorTest, RefusesWhatCannotRun) {
  auto ctx = NewContext(16);
  GeneratorParams p;
  EXPECT_EQ(Generator::Create(*ctx, {}, p).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Generator::Create(*ctx, std::vector<int32_t>(17, 5), p).status().code(), ErrorCode::kOutOfRange);
  GeneratorParams bad = p;
  bad.sampling.top_p = 0.0f;
  EXPECT_EQ(Generator::Create(*ctx, Prompt("hi"), bad).status().code(), ErrorCode::kInvalidArgument);
  bad = p;
  bad.max_tokens = -1;
  EXPECT_EQ(Generator::Create(*ctx, Prompt("hi"), bad).status().code(), ErrorCode::kInvalidArgument);
  // A cached prefix the context does not hold is a caller bug.
  EXPECT_EQ(Generator::Create(*ctx, Prompt("hi"), p, 1).status().code(), ErrorCode::kInternal);
}

}  // namespace
}  // namespace pocketlm
