#include "tokenizer/pretokenizer.h"

#include "tokenizer/unicode.h"

namespace pocketlm {
namespace {

// Regex lists copied from llama.cpp's llm_tokenizer_bpe constructor (src/llama-vocab.cpp). Where llama.cpp
// rewrote a Hugging Face pattern for std::regex (no (?i:...)), the rewritten form is used, since it is what
// produced the reference token ids. In deepseek-llm's class, code points with a singleton canonical decomposition
// are written as regex escapes (backslash u): a normalizing editor or tool turns e.g. U+1FD3 into U+0390, which breaks
// the range.
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kBloom = " ?[^(\\s|.,!?…。，、।۔،)]+";

struct PreDef {
  std::vector<const char*> names;
  std::vector<const char*> regexes;
  PreTokenizerFlags flags;
};

PreTokenizerFlags Flags(bool clean_spaces, bool ignore_merges = false, bool force_bos = false, bool no_bos = false) {
  PreTokenizerFlags f;
  f.clean_spaces = clean_spaces;
  f.ignore_merges = ignore_merges;
  f.force_add_bos = force_bos;
  f.no_bos = no_bos;
  return f;
}

const std::vector<PreDef>& Definitions() {
  // Long UTF-8 class strings make clang-format 14 oscillate, so the table keeps its hand layout.
  // clang-format off
  static const std::vector<PreDef> defs = {
      {{"default", ""}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, Flags(true)},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3}, Flags(true, true, true)},
      {{"dbrx", "smaug-bpe"}, {kLlama3}, Flags(true)},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-"
        "ἕἘ-"
        "Ἕἠ-"
        "ὅὈ-"
        "Ὅὐ-ὗὙὛὝὟ-\\u1F7Dᾀ-ᾴᾶ-ᾼ\\u1FBEῂ-ῄῆ-ῌῐ-\\u1FD3ῖ-\\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\u2126ℨ\\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-"
        "ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-"
        "𐳲𑢠-"
        "𑣟𞤀-"
        "𞥃]"
        "+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"},
       Flags(false)},
      {{"deepseek-v3"},
       {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
        "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
       Flags(false)},
      {{"deepseek-coder"},
       {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"},
       Flags(false)},
      {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}, Flags(true)},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, {"\\p{N}", kGpt2}, Flags(true)},
      {{"command-r", "smollm"}, {"\\p{N}", kGpt2}, Flags(false)},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code",
        "roberta-bpe", "mpt", "olmo", "jais"},
       {kGpt2},
       Flags(true)},
      {{"qwen2"}, {kQwen2}, Flags(false)},
      {{"stablelm2", "megrez"}, {kQwen2}, Flags(true)},
      {{"poro-chat"}, {kBloom}, Flags(false)},
      {{"bloom", "gpt3-finnish"}, {kBloom}, Flags(true)},
      {{"viking"}, {kBloom, "\\p{N}"}, Flags(false)},
      {{"chatglm-bpe"}, {kLlama3}, Flags(true, false, false, true)},
      {{"tekken"},
       {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^"
        "a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       Flags(false, true, true)},
      {{"chameleon"},
       {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
        "[\\p{P}!-/:-@\\[-`{-~]", kGpt2},
       Flags(false, false, true)},
  };
  // clang-format on
  return defs;
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::FromPatterns(const std::vector<std::string>& patterns) {
  auto pre = std::make_unique<PreTokenizer>();
  for (const std::string& p : patterns) {
    PLM_ASSIGN_OR_RETURN(Regex re, Regex::Compile(p));
    pre->regexes_.push_back(std::move(re));
  }
  return pre;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::ForName(std::string_view name) {
  for (const PreDef& def : Definitions()) {
    for (const char* n : def.names) {
      if (name != n) continue;
      std::vector<std::string> patterns(def.regexes.begin(), def.regexes.end());
      PLM_ASSIGN_OR_RETURN(auto pre, FromPatterns(patterns));
      pre->flags_ = def.flags;
      return pre;
    }
  }
  std::string supported;
  for (const PreDef& def : Definitions()) {
    for (const char* n : def.names) {
      if (*n == '\0') continue;
      supported += supported.empty() ? "" : ", ";
      supported += n;
    }
  }
  return Unsupported("unknown pre-tokenizer tokenizer.ggml.pre = '" + std::string(name) + "'; supported: " + supported);
}

std::vector<size_t> PreTokenizer::Split(std::span<const uint32_t> cps) const {
  // llama.cpp matches non-ASCII whitespace as \v (std::regex's \s is ASCII-only); do the same so classes that
  // name such characters (deepseek-llm's "　-。") behave identically.
  std::vector<uint32_t> subject(cps.begin(), cps.end());
  for (uint32_t& cp : subject) {
    if (cp > 0x7F && IsWhitespace(cp)) cp = 0x0B;
  }
  std::vector<size_t> pieces;
  if (!subject.empty()) pieces.push_back(subject.size());
  for (const Regex& re : regexes_) pieces = RegexSplit(re, subject, pieces);
  return pieces;
}

}  // namespace pocketlm
