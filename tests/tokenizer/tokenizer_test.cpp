// Tokenizer: hand-computed encodings of tiny in-memory vocabs, metadata errors, special-token parsing and
// end-of-generation ids on the golden GPT-2 and Llama-2 vocabs.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "vocab_builder.h"

namespace pocketlm {
namespace {

using testing::Load;
using testing::TinyBpe;
using testing::TinySpm;

std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "../shared/golden";
}

std::unique_ptr<Tokenizer> LoadGolden(const std::string& rel) {
  auto f = GgufFile::Open(GoldenDir() + "/" + rel);
  if (!f.ok()) return nullptr;
  auto t = Tokenizer::FromGguf(*f);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view s, bool add_special = false, bool parse = false) {
  auto r = t.Encode(s, add_special, parse);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::vector<int32_t>{};
}

TEST(TokenizerTest, TinyBpeMergesByRank) {
  auto t = Load(TinyBpe());
  ASSERT_TRUE(t.ok()) << t.status().message();
  // "abc" -> a b c -> ab c -> abc; " ab" -> Ġ a b: "a b" (rank 0) beats "Ġ a" (rank 2) -> Ġ ab.
  EXPECT_EQ(Enc(**t, "abc ab"), (std::vector<int32_t>{4, 5, 3}));
  EXPECT_EQ(Enc(**t, " a"), (std::vector<int32_t>{6}));
  EXPECT_EQ((*t)->Decode({4, 5, 3}), "abc ab");
  EXPECT_EQ((*t)->model(), "gpt2");
  EXPECT_EQ((*t)->pre(), "gpt-2");
  EXPECT_FALSE((*t)->add_bos());
  EXPECT_EQ((*t)->bos(), -1);  // llama.cpp's default 11 does not exist in a 7-token vocab
}

TEST(TokenizerTest, TinySpmMergesByScoreAndFallsBackToBytes) {
  auto t = Load(TinySpm());
  ASSERT_TRUE(t.ok()) << t.status().message();
  // "ab" -> "▁ab": ▁a (-1) beats ab (-2), then ▁a+b = ▁ab. BOS (1) added by default for SPM.
  EXPECT_EQ(Enc(**t, "ab", true), (std::vector<int32_t>{1, 8}));
  EXPECT_EQ(Enc(**t, "ab", false), (std::vector<int32_t>{8}));
  // ö (C3 B6) is not a token: ▁ then its bytes.
  EXPECT_EQ(Enc(**t, "\xC3\xB6"), (std::vector<int32_t>{3, 13, 14}));
  EXPECT_EQ((*t)->Decode({3, 13, 14}), "\xC3\xB6");  // the added space prefix is removed again
  EXPECT_EQ((*t)->Decode({1, 8}), " ab");            // ... but not after a BOS, as llama_detokenize
  // llama_detokenize with remove_special drops the BOS and, because a BOS was there, keeps the space.
  EXPECT_EQ((*t)->Decode({1, 8}, DecodeOptions{.remove_special = true}), " ab");
  EXPECT_EQ((*t)->TokenToPiece(1), "");  // control
  EXPECT_EQ((*t)->Decode({1}, DecodeOptions{.unparse_special = true}), "<s>");
  EXPECT_EQ((*t)->TokenToPiece(13), "\xC3");
  EXPECT_TRUE((*t)->IsEndOfGeneration(2));
  EXPECT_FALSE((*t)->IsEndOfGeneration(8));
}

TEST(TokenizerTest, OutOfRangeIdsAreEmpty) {
  auto t = Load(TinySpm());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->TokenText(-1), "");
  EXPECT_EQ((*t)->TokenText(1 << 30), "");
  EXPECT_EQ((*t)->TokenToPiece(-5), "");
  EXPECT_EQ((*t)->Decode({8, -1, 99999}), "ab");
  EXPECT_EQ((*t)->Decode({-1, 8}), " ab");  // only the first token's leading space is ever removed
  EXPECT_FALSE((*t)->IsEndOfGeneration(-1));
}

void ExpectError(const GgufWriter& w, ErrorCode code, std::vector<std::string> needles) {
  auto t = Load(w);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), code) << t.status().message();
  for (const auto& n : needles) EXPECT_NE(t.status().message().find(n), std::string::npos) << t.status().message();
}

TEST(TokenizerTest, BadMetadataIsAnError) {
  {
    GgufWriter w;  // no tokenizer.ggml.model at all
    w.SetStringArray("tokenizer.ggml.tokens", {"a"});
    ExpectError(w, ErrorCode::kNotFound, {"tokenizer.ggml.model"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetString("tokenizer.ggml.model", "bert");
    ExpectError(w, ErrorCode::kUnsupported, {"'bert'", "gpt2", "llama"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetString("tokenizer.ggml.pre", "no-such-pre");
    ExpectError(w, ErrorCode::kUnsupported, {"'no-such-pre'", "qwen2", "llama-bpe", "deepseek-coder"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetI32Array("tokenizer.ggml.token_type", {1, 1});
    ExpectError(w, ErrorCode::kCorrupt, {"token_type", "2 entries", "7 tokens"});
  }
  {
    GgufWriter w = TinySpm();
    w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0});
    ExpectError(w, ErrorCode::kCorrupt, {"scores"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetStringArray("tokenizer.ggml.merges", {"a b", "x y"});
    ExpectError(w, ErrorCode::kCorrupt, {"merges[1]", "'x'"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetStringArray("tokenizer.ggml.merges", {"ab"});
    ExpectError(w, ErrorCode::kCorrupt, {"merges[0]", "no space"});
  }
  {
    GgufWriter w2;  // BPE without merges
    w2.SetString("tokenizer.ggml.model", "gpt2");
    w2.SetStringArray("tokenizer.ggml.tokens", {"a"});
    ExpectError(w2, ErrorCode::kNotFound, {"tokenizer.ggml.merges"});
  }
  {
    GgufWriter w = TinyBpe();
    w.SetF32Array("tokenizer.ggml.tokens", {1.0f});
    ExpectError(w, ErrorCode::kCorrupt, {"tokenizer.ggml.tokens"});
  }
  {
    GgufWriter w = TinySpm();
    w.SetString("tokenizer.ggml.bos_token_id", "one");
    auto t = Load(w);
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("bos_token_id"), std::string::npos) << t.status().message();
  }
  {
    GgufWriter w = TinyBpe();
    w.SetBool("tokenizer.ggml.add_bos_token", true);  // but no BOS exists
    ExpectError(w, ErrorCode::kCorrupt, {"add_bos_token"});
  }
  {
    GgufWriter w = TinySpm();
    w.SetStringArray("tokenizer.ggml.tokens", {});
    ExpectError(w, ErrorCode::kCorrupt, {"empty"});
  }
}

TEST(TokenizerTest, MetadataOverridesDefaults) {
  GgufWriter w = TinySpm();
  w.SetBool("tokenizer.ggml.add_bos_token", false);
  w.SetBool("tokenizer.ggml.add_eos_token", true);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  w.SetU32("tokenizer.ggml.eos_token_id", 8);
  auto t = Load(w);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // No space prefix: "ab" -> a b -> ab (-2); EOS = 8 appended.
  EXPECT_EQ(Enc(**t, "ab", true), (std::vector<int32_t>{7, 8}));
  EXPECT_TRUE((*t)->IsEndOfGeneration(8));
}

TEST(TokenizerTest, InvalidUtf8NeverFails) {
  auto spm = Load(TinySpm());
  ASSERT_TRUE(spm.ok());
  // 0xFF alone has no byte token in the tiny vocab: llama.cpp would throw, we emit <unk>.
  EXPECT_EQ(Enc(**spm, "\xFF"), (std::vector<int32_t>{3, 0}));
  auto gpt2 = LoadGolden("tokenizers/ggml-vocab-gpt-2.gguf");
  if (!gpt2) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  const std::string bad = "a\xFF\xFE b\xC3 \xE2\x82 \xF0\x9F\x98";
  EXPECT_EQ(gpt2->Decode(Enc(*gpt2, bad)), bad);  // byte-level BPE keeps every byte
}

TEST(TokenizerTest, ParseSpecialFindsEndOfText) {
  auto t = LoadGolden("tokenizers/ggml-vocab-gpt-2.gguf");
  if (!t) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  const int32_t eot = 50256;
  ASSERT_EQ(t->FindToken("<|endoftext|>"), eot);
  const std::string chat = "<|im_start|>user\nHi there<|im_end|>\n<|endoftext|>";
  const auto with = Enc(*t, chat, false, true);
  const auto without = Enc(*t, chat, false, false);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with.back(), eot);
  EXPECT_EQ(std::count(with.begin(), with.end(), eot), 1);
  EXPECT_EQ(std::count(without.begin(), without.end(), eot), 0);
  EXPECT_GT(without.size(), with.size());
  // The text before the special token is tokenized on its own.
  const auto prefix = Enc(*t, "<|im_start|>user\nHi there<|im_end|>\n");
  EXPECT_EQ(std::vector<int32_t>(with.begin(), with.end() - 1), prefix);
  EXPECT_EQ(t->Decode(with), "<|im_start|>user\nHi there<|im_end|>\n");  // control token prints nothing
  EXPECT_EQ(t->Decode(with, DecodeOptions{.unparse_special = true}), chat);
  EXPECT_TRUE(t->IsEndOfGeneration(eot));
  EXPECT_EQ(t->bos(), eot);
  EXPECT_EQ(t->eos(), eot);
  EXPECT_FALSE(t->add_bos());  // gpt2 vocabs add no BOS unless the metadata says so
  EXPECT_EQ(Enc(*t, "Hi", true), Enc(*t, "Hi", false));
}

TEST(TokenizerTest, LlamaSpmAddsBosAndKnownIds) {
  auto t = LoadGolden("tokenizers/ggml-vocab-llama-spm.gguf");
  if (!t) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->n_vocab(), 32000);
  EXPECT_EQ(Enc(*t, "Hello", true), (std::vector<int32_t>{1, 15043}));  // <s> ▁Hello
  EXPECT_EQ(Enc(*t, "\xFF"), (std::vector<int32_t>{29871, 3 + 0xFF}));  // ▁ <0xFF>
  EXPECT_EQ(Enc(*t, "<s>", false, true), (std::vector<int32_t>{1}));
  EXPECT_TRUE(t->IsEndOfGeneration(2));
  EXPECT_EQ(t->TokenToPiece(15043), " Hello");
  EXPECT_EQ(t->Decode({15043}), "Hello");
}

}  // namespace
}  // namespace pocketlm
