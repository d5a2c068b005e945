// Test helper: small vocabularies built in memory with GgufWriter.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm::testing {

inline Result<std::unique_ptr<Tokenizer>> Load(const GgufWriter& w) {
  PLM_ASSIGN_OR_RETURN(GgufFile f, GgufFile::FromBytes(w.ToBytes(), "test-vocab"));
  return Tokenizer::FromGguf(f);
}

// Byte-level BPE: a, b, c, ab, abc, Ġ (space), Ġa; merges "a b" < "ab c" < "Ġ a" (rank = index).
inline GgufWriter TinyBpe() {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "gpt-2");
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "abc", "\xC4\xA0",
                                             "\xC4\xA0"
                                             "a"});
  w.SetStringArray("tokenizer.ggml.merges", {"a b", "ab c", "\xC4\xA0 a"});
  w.SetI32Array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1});
  return w;
}

// SentencePiece: <unk> <s> </s> ▁ a b ▁a ab ▁ab, then byte tokens <0xF0> <0x9F> <0xA6> <0x99> <0xC3> <0xB6>.
inline GgufWriter TinySpm() {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b",
                                             "\xE2\x96\x81"
                                             "a",
                                             "ab",
                                             "\xE2\x96\x81"
                                             "ab",
                                             "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>", "<0xC3>", "<0xB6>"});
  w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0, -5, -5, -5, -1, -2, -3, 0, 0, 0, 0, 0, 0});
  w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6, 6, 6, 6, 6});
  return w;
}

}  // namespace pocketlm::testing
