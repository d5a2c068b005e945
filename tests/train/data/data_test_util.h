// Test helpers for the dataset layer: golden vocabularies (skipped when ../shared/golden is absent) and small
// in-memory vocabularies with the chat markers the golden ones lack (Llama-3 / ChatML / Gemma).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/utf8.h"
#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm::testing {

inline std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "../shared/golden";
}

// The vocabulary of a GGUF file (a vocabulary or a model). nullptr when the file is absent (the caller skips); a
// load error of a present file is a failure.
inline std::unique_ptr<Tokenizer> LoadVocabFile(const std::string& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return nullptr;
  auto t = Tokenizer::FromGguf(*f);
  if (!t.ok()) {
    ADD_FAILURE() << t.status().message();
    return nullptr;
  }
  return std::move(t).value();
}

// A golden vocabulary: ../shared/golden/tokenizers/ggml-vocab-NAME.gguf.
inline std::unique_ptr<Tokenizer> LoadGoldenVocab(const std::string& name) {
  return LoadVocabFile(GoldenDir() + "/tokenizers/ggml-vocab-" + name + ".gguf");
}

inline std::unique_ptr<Tokenizer> LoadWriter(const GgufWriter& w) {
  auto f = GgufFile::FromBytes(w.ToBytes(), "test-vocab");
  if (!f.ok()) {
    ADD_FAILURE() << f.status().message();
    return nullptr;
  }
  auto t = Tokenizer::FromGguf(*f);
  if (!t.ok()) {
    ADD_FAILURE() << t.status().message();
    return nullptr;
  }
  return std::move(t).value();
}

constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeByte = 6;

// Byte-level BPE whose normal tokens are the 256 byte symbols (GPT-2's bytes_to_unicode) plus "\n\n" (merge
// "Ċ Ċ"), then the control tokens `specials`. BOS is specials[0], EOS specials[1].
inline GgufWriter ByteBpeVocab(const std::vector<std::string>& specials, bool add_bos) {
  std::vector<std::string> tokens;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    std::string s;
    AppendUtf8(printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++), &s);
    tokens.push_back(s);
  }
  tokens.push_back("\xC4\x8A\xC4\x8A");  // ĊĊ = "\n\n"
  std::vector<int32_t> types(tokens.size(), kTypeNormal);
  const int32_t first_special = static_cast<int32_t>(tokens.size());
  for (const std::string& s : specials) {
    tokens.push_back(s);
    types.push_back(kTypeControl);
  }
  GgufWriter w;
  w.SetString("general.name", "test");
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "llama3");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", {"\xC4\x8A \xC4\x8A"});
  w.SetU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(first_special));
  w.SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(first_special + 1));
  w.SetBool("tokenizer.ggml.add_bos_token", add_bos);
  return w;
}

// SentencePiece vocab shaped like Gemma's: <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn> (user-defined,
// as in Gemma's GGUFs), "▁", then the 256 byte tokens; no space prefix.
inline GgufWriter GemmaLikeVocab() {
  std::vector<std::string> tokens = {"<pad>",           "<eos>",         "<bos>",       "<unk>",
                                     "<start_of_turn>", "<end_of_turn>", "\xE2\x96\x81"};
  std::vector<int32_t> types = {kTypeControl,     kTypeControl,     kTypeControl, kTypeUnknown,
                                kTypeUserDefined, kTypeUserDefined, kTypeNormal};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(kTypeByte);
  }
  GgufWriter w;
  w.SetString("general.name", "gemma-like");
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.bos_token_id", 2);
  w.SetU32("tokenizer.ggml.eos_token_id", 1);
  w.SetU32("tokenizer.ggml.unknown_token_id", 3);
  w.SetU32("tokenizer.ggml.padding_token_id", 0);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  return w;
}

// llama.cpp's conversation, including the reply padded with spaces that shows which templates strip.
inline std::vector<ChatMessage> Conversation() {
  return {{ChatRole::kSystem, "You are a helpful assistant"},
          {ChatRole::kUser, "Hello"},
          {ChatRole::kAssistant, "Hi there"},
          {ChatRole::kUser, "Who are you"},
          {ChatRole::kAssistant, "   I am an assistant   "},
          {ChatRole::kUser, "Another question"}};
}

}  // namespace pocketlm::testing
