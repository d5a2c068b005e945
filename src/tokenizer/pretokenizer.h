// Regex pre-tokenizers of byte-level BPE vocabs, chosen by tokenizer.ggml.pre as in llama.cpp's llama-vocab.cpp
// (llm_tokenizer_bpe regex_exprs and the per-name flags in llama_vocab::impl::load).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/regex.h"

namespace pocketlm {

// Per-name settings besides the regexes (llama_vocab::impl::load).
struct PreTokenizerFlags {
  bool ignore_merges = false;  // emit a whole pre-token when it is already a vocab entry (llama3, tekken)
  bool clean_spaces = true;    // clean_up_tokenization_spaces on decode
  bool force_add_bos = false;  // add_bos default true for this name (metadata may still override)
  bool no_bos = false;         // the vocab has no BOS (chatglm-bpe)
};

class PreTokenizer {
 public:
  // `name` as in tokenizer.ggml.pre ("" means llama.cpp's "default"). Unknown names are an Unsupported error
  // listing the supported ones.
  static Result<std::unique_ptr<PreTokenizer>> ForName(std::string_view name);
  // Any list of patterns, applied in order (each splits the pieces the previous one produced).
  static Result<std::unique_ptr<PreTokenizer>> FromPatterns(const std::vector<std::string>& patterns);

  // Splits code points into pieces; returns their lengths (they cover `cps` in order). Non-ASCII White_Space
  // is matched as U+000B, as llama.cpp's unicode_regex_split does before running std::regex.
  std::vector<size_t> Split(std::span<const uint32_t> cps) const;

  const PreTokenizerFlags& flags() const { return flags_; }

 private:
  std::vector<Regex> regexes_;
  PreTokenizerFlags flags_;
};

}  // namespace pocketlm
