// Hugging Face tokenizers (tokenizer.json, tokenizer_config.json) <-> GGUF tokenizer metadata, following what
// llama.cpp's convert_hf_to_gguf.py and gguf-py (vocab.py, SpecialVocab) write:
//   byte-level BPE (a ByteLevel pre-tokenizer)   -> tokenizer.ggml.model "gpt2": tokens, token_type, merges, and
//                                                   tokenizer.ggml.pre named after the pre-tokenizer's regex
//   SentencePiece-derived ("BPE" with byte_fallback or a "▁" normalizer, or "Unigram")
//                                                -> tokenizer.ggml.model "llama": tokens, scores, token_type
// plus added and special tokens, special token ids, add_bos/add_eos and the chat template.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "convert/kv_list.h"
#include "io/gguf/gguf_reader.h"

namespace pocketlm::convert {

// The token-type numbers of tokenizer.ggml.token_type (gguf-py TokenType / llama.cpp LLAMA_TOKEN_TYPE_*).
enum GgufTokenType : int32_t {
  kTokNormal = 1,
  kTokUnknown = 2,
  kTokControl = 3,
  kTokUserDefined = 4,
  kTokUnused = 5,
  kTokByte = 6,
};

// The tokenizer files of a model directory. Only tokenizer.json is required.
struct HfTokenizerFiles {
  std::string dir;
  int64_t n_vocab = 0;  // rows of the embedding (config.json vocab_size); the token list is padded to it; 0 = none
  std::string arch;     // general.architecture; Phi-3 pads SentencePiece vocabularies differently
};

// The tokenizer.* metadata for a model directory (reads tokenizer.json, tokenizer_config.json, chat_template.jinja,
// config.json and generation_config.json when present).
Result<KvList> ImportHfTokenizer(const HfTokenizerFiles& files);

// tokenizer.json and tokenizer_config.json text for the vocabulary in `f` (inverse of ImportHfTokenizer).
struct HfTokenizerText {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
};
Result<HfTokenizerText> ExportHfTokenizer(const GgufFile& f);

}  // namespace pocketlm::convert
