// Regression: text whose SentencePiece encoding spells "▁" with byte-fallback tokens trains. The llama-kq
// vocabulary has no "▁" piece, so the space before "€" in "Price in € please" became <0xE2><0x96><0x81>, which
// the chat tokenizer could not map back to the text ("cannot align token 229 ('<0xE2>') to byte 8"), and
// `pocketlm finetune` stopped on the first such line. Checked through TokenizeChat and through the JSONL dataset
// reader ("text" and "prompt"/"completion" lines).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "tokenizer/chat_template.h"
#include "train/data/dataset.h"

namespace pocketlm {
namespace {

constexpr const char* kText = "Price in \xE2\x82\xAC please";  // "Price in € please"

std::unique_ptr<Tokenizer> LlamaKqVocab() {
  return testing::LoadVocabFile(testing::GoldenDir() + "/models/llama-kq-Q4_K_M.gguf");
}

// The tokens of `text` alone, as the vocabulary encodes it (no BOS / EOS).
std::vector<int32_t> Encoded(const Tokenizer& tok, const std::string& text) {
  auto ids = tok.Encode(text, /*add_special=*/false, /*parse_special=*/false);
  EXPECT_TRUE(ids.ok()) << ids.status().message();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(ChatAlignTest, LlamaKqByteFallbackSpaceThroughTokenizeChat) {
  auto tok = LlamaKqVocab();
  if (!tok) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  // The premise: the vocabulary spells the space before "€" as the three bytes of "▁".
  ASSERT_FALSE(tok->FindToken("\xE2\x96\x81"));
  const std::vector<int32_t> ids = Encoded(*tok, kText);
  const int32_t e2 = *tok->FindToken("<0xE2>"), x96 = *tok->FindToken("<0x96>"), x81 = *tok->FindToken("<0x81>");
  const std::vector<int32_t> marker = {e2, x96, x81};
  ASSERT_NE(std::search(ids.begin(), ids.end(), marker.begin(), marker.end()), ids.end());

  const ChatSegment whole{ChatSegment::kContent, kText, true};
  auto chat = TokenizeChat(*tok, std::span(&whole, 1));
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  std::vector<int32_t> want = {tok->bos()};
  want.insert(want.end(), ids.begin(), ids.end());
  EXPECT_EQ(chat->tokens, want);
  std::vector<uint8_t> all(want.size(), 1);
  all[0] = 0;  // BOS
  EXPECT_EQ(chat->trainable, all);

  // Split at the space: the three byte tokens that spell its "▁" stand for that one byte together, so they all
  // take the flag of the segment that holds the space (here the trainable completion), and every token of
  // "Price in" stays out of the loss.
  const std::vector<ChatSegment> split = {{ChatSegment::kContent, "Price in", false},
                                          {ChatSegment::kContent, " \xE2\x82\xAC please", true}};
  auto masked = TokenizeChat(*tok, split);
  ASSERT_TRUE(masked.ok()) << masked.status().message();
  EXPECT_EQ(masked->tokens, want);
  const size_t head = 1 + Encoded(*tok, "Price in").size();  // BOS, "Price in"
  std::vector<uint8_t> mask(want.size(), 1);
  std::fill(mask.begin(), mask.begin() + static_cast<std::ptrdiff_t>(head), 0);
  EXPECT_EQ(masked->trainable, mask);
  ASSERT_GE(want.size(), head + 3);
  EXPECT_EQ(std::vector<int32_t>(want.begin() + static_cast<std::ptrdiff_t>(head),
                                 want.begin() + static_cast<std::ptrdiff_t>(head + 3)),
            marker);
}

TEST(ChatAlignTest, LlamaKqByteFallbackSpaceThroughDatasetLines) {
  auto tok = LlamaKqVocab();
  if (!tok) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  DatasetOptions opt;
  opt.strict = true;  // a line that cannot be used is the error
  auto ds = ParseJsonlDataset(
      "{\"text\":\"Price in \xE2\x82\xAC please\"}\n"
      "{\"prompt\":\"Price in\",\"completion\":\" \xE2\x82\xAC please\"}\n",
      "test.jsonl", *tok, opt);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  ASSERT_EQ(ds->examples.size(), 2u);
  EXPECT_EQ(ds->stats.skipped_total(), 0);

  std::vector<int32_t> want = {tok->bos()};
  for (int32_t id : Encoded(*tok, kText)) want.push_back(id);
  want.push_back(tok->eos());
  for (const TrainExample& ex : ds->examples) EXPECT_EQ(ex.tokens, want);
  std::vector<uint8_t> all(want.size(), 1);
  all[0] = 0;
  EXPECT_EQ(ds->examples[0].trainable, all);
  const size_t head = 1 + Encoded(*tok, "Price in").size();
  std::vector<uint8_t> completion(want.size(), 1);
  std::fill(completion.begin(), completion.begin() + static_cast<std::ptrdiff_t>(head), 0);
  EXPECT_EQ(ds->examples[1].trainable, completion);
}

}  // namespace
}  // namespace pocketlm
