// Text <-> token ids for GGUF vocabularies, matching llama.cpp (llama-vocab.cpp, unicode.cpp at build 4748):
//   tokenizer.ggml.model = "llama": SentencePiece-style BPE over token scores (llama.cpp's llm_tokenizer_spm)
//   tokenizer.ggml.model = "gpt2":  byte-level BPE over tokenizer.ggml.merges with the regex pre-tokenizer
//                                   named by tokenizer.ggml.pre
// Invalid UTF-8 in text to encode never fails: SPM sees it byte by byte, as llama.cpp does (unknown bytes become
// <0xXX> tokens); BPE pre-tokenizes each invalid byte as if it were U+FFFD (a symbol) but byte-encodes the
// original byte, so decoding gives back the exact input (llama.cpp throws on such input) - except that qwen2
// vocabularies give back the input's NFC form (normalizes_nfc()).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"

namespace pocketlm {

class PreTokenizer;

enum class VocabType { kSpm, kBpe };

// Per-token attributes, as llama.cpp's llama_token_attr (derived from tokenizer.ggml.token_type and names).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};
// Tokens that special-token text (a chat template's markers, <|im_start|>) maps to, as llama.cpp's
// tokenizer_st_partition treats them.
constexpr uint32_t kAttrSpecial = kAttrControl | kAttrUserDefined | kAttrUnknown;

// What Decode does beyond concatenating pieces; the fields are llama_detokenize's arguments plus the vocab's
// clean_up_tokenization_spaces pass, which llama.cpp always applies when the vocab asks for it.
struct DecodeOptions {
  bool remove_special = false;   // drop a leading BOS / trailing EOS the vocab adds itself
  bool unparse_special = false;  // render control and unknown tokens as their text instead of ""
  bool clean_up_spaces = false;  // llama.cpp's " ." -> "." passes, for vocabs that set clean_spaces
};

class Tokenizer {
 public:
  // Copies what it needs; `f` may be closed afterwards.
  static Result<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& f);
  ~Tokenizer();

  // add_special: BOS / EOS as the vocab says. parse_special: control and unknown-type token texts in `text`
  // become those tokens (user-defined tokens always do, as in llama.cpp).
  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_special, bool parse_special) const;

  const std::string& TokenText(int32_t id) const;  // raw vocab string; "" when out of range
  // Bytes this token contributes to output text: SPM '▁' -> ' ' and <0xXX> -> the byte; BPE byte-level
  // unmapping; user-defined tokens verbatim; control / unknown / out-of-range tokens "".
  std::string TokenToPiece(int32_t id) const;
  // Concatenated pieces; with an SPM space prefix the first token's leading space is removed (llama.cpp's
  // llama_detokenize, which does not do that when the first token is a BOS).
  std::string Decode(const std::vector<int32_t>& ids) const { return Decode(ids, DecodeOptions{}); }
  std::string Decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }  // -1 when absent
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  bool IsEndOfGeneration(int32_t id) const;
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  std::optional<int32_t> FindToken(std::string_view text) const;
  // The token `text` is as a special token (kAttrSpecial); nullopt when the vocabulary lacks it or has it only as
  // ordinary text.
  std::optional<int32_t> FindSpecialToken(std::string_view text) const;
  uint32_t TokenAttributes(int32_t id) const;  // TokenAttr bits; 0 when out of range
  VocabType type() const { return type_; }
  std::string_view model() const { return model_; }
  std::string_view pre() const { return pre_; }
  // Encode normalizes text to NFC first, as Hugging Face's tokenizer.json does for Qwen2 / Qwen2.5 / Qwen3
  // ("normalizer": {"type": "NFC"}); llama.cpp skips that step, and its qwen2 test vectors are NFC already.
  bool normalizes_nfc() const { return type_ == VocabType::kBpe && pre_ == "qwen2"; }

 private:
  friend class TokenizerLoader;
  struct Fragment {
    int32_t token;  // -1: raw text [offset, offset + length)
    size_t offset;
    size_t length;
  };
  struct MergeInfo {
    int32_t rank;
    int32_t result;  // token id of the concatenation, -1 if not in the vocab
  };
  struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kAttrNormal;
  };

  Tokenizer();
  int32_t Lookup(std::string_view text) const;  // -1 when absent
  std::vector<Fragment> PartitionSpecial(std::string_view text, bool parse_special) const;
  void EncodeSpm(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeBpe(std::string_view text, std::vector<int32_t>* out) const;
  void MergeBpeWord(const std::string& word, std::vector<int32_t>* out) const;
  std::string Piece(int32_t id, bool unparse_special) const;

  VocabType type_ = VocabType::kSpm;
  std::string model_, pre_;
  std::vector<TokenData> tokens_;
  std::unordered_map<std::string_view, int32_t> token_to_id_;  // views into tokens_[i].text
  std::vector<int32_t> special_by_length_;          // control / user-defined / unknown ids, longest text first
  std::vector<int32_t> byte_tokens_;                // SPM: id for each byte value, -1 if none
  std::unordered_map<uint64_t, MergeInfo> merges_;  // BPE: key (left id << 32 | right id)
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::vector<int32_t> eog_;  // sorted
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  bool ignore_merges_ = false, clean_spaces_ = false;

  friend class StreamingDetokenizer;
};

// Streams text token by token. Holds back an incomplete UTF-8 tail so a multi-byte character split across
// tokens is printed whole, and applies Decode's first-token space rule, so the concatenation of all Push()
// results and Flush() equals Decode(ids).
class StreamingDetokenizer {
 public:
  // `at_sequence_start`: the first pushed token begins the text (Decode's rule applies). Pass false when
  // streaming a continuation after a prompt, where a leading space separates words and must be kept.
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool at_sequence_start = true)
      : tokenizer_(tokenizer), first_(at_sequence_start) {}
  std::string Push(int32_t id);
  std::string Flush();  // whatever is held back, even if it is not valid UTF-8

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_;
};

}  // namespace pocketlm
