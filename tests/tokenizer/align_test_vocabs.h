// Test helper for the AlignTokens tests: small vocabularies with what the golden ones lack or have only in big
// files (byte fallback without a "▁" piece, lstrip, user-defined tokens that are also byte symbols).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../train/data/data_test_util.h"

namespace pocketlm::testing {

// SentencePiece with <unk> <s> </s>, the user-defined "<ud>" and the 256 byte tokens, optionally "▁". Without
// "▁" every space is spelled <0xE2><0x96><0x81>, as in the llama-kq vocabulary.
inline std::unique_ptr<Tokenizer> ByteSpm(bool space_piece, bool space_prefix) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<ud>"};
  std::vector<int32_t> types = {kTypeUnknown, kTypeControl, kTypeControl, kTypeUserDefined};
  if (space_piece) {
    tokens.push_back("\xE2\x96\x81");
    types.push_back(kTypeNormal);
  }
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(kTypeByte);
  }
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetBool("tokenizer.ggml.add_space_prefix", space_prefix);
  return LoadWriter(w);
}

// Byte-level BPE with the 256 byte symbols, pre-tokenizer jina-v2-code (for which llama.cpp gives "<mask>"
// lstrip), control tokens <s> </s>, and user-defined tokens "<mask>", "  " (two spaces) and "õ" (also the byte
// symbol of 0xF5).
inline std::unique_ptr<Tokenizer> LstripBpe() {
  std::vector<std::string> tokens;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    std::string s;
    AppendUtf8(printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++), &s);
    tokens.push_back(s);
  }
  std::vector<int32_t> types(tokens.size(), kTypeNormal);
  for (const char* s : {"<s>", "</s>"}) {
    tokens.push_back(s);
    types.push_back(kTypeControl);
  }
  for (const char* s : {"<mask>", "  ", "\xC3\xB5"}) {
    tokens.push_back(s);
    types.push_back(kTypeUserDefined);
  }
  GgufWriter w;
  w.SetString("general.name", "lstrip");
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "jina-v2-code");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", {});
  w.SetU32("tokenizer.ggml.bos_token_id", 256);
  w.SetU32("tokenizer.ggml.eos_token_id", 257);
  return LoadWriter(w);
}

}  // namespace pocketlm::testing
