// libFuzzer target: arbitrary bytes (valid UTF-8 or not) through AlignTokens and TokenizeChat.
//
// Vocabularies: $PLM_FUZZ_VOCABS (paths separated by ':'), default the llama-kq model's (SentencePiece without a
// "▁" piece: byte fallback for every space) and the golden phi-3 (rstrip user-defined token), mpt (whitespace-run
// user-defined tokens), deepseek-llm (user-defined tokens that are also byte symbols) and starcoder (byte-level BPE
// that drops some bytes) vocabularies under $PLM_GOLDEN_DIR (default ../shared/golden). Without a loadable
// vocabulary every input is a no-op.
//
// Input: byte 0 picks the vocabulary; the rest, split at 0xFF, are chat segments whose first byte picks the kind
// (content trainable or not, template text, or a special token of the vocabulary picked by the next byte) and
// whose other bytes are the text. Checked, trapping on a violation:
//   - AlignTokens succeeds on Encode's tokens of the whole rest (0xFF bytes included) and its spans tile it;
//   - TokenizeChat either succeeds with one flag per token or refuses with kInvalidArgument (message text it
//     will not take, a template marker the vocabulary lacks); any other error is an alignment failure.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/token_align.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Vocab {
  std::unique_ptr<pocketlm::Tokenizer> tokenizer;
  std::vector<std::string> specials;  // texts of control, user-defined and unknown tokens
};

std::vector<Vocab> Load() {
  std::vector<std::string> paths;
  if (const char* list = std::getenv("PLM_FUZZ_VOCABS"); list != nullptr) {
    std::string_view rest = list;
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      paths.emplace_back(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  } else {
    const char* env = std::getenv("PLM_GOLDEN_DIR");
    const std::string golden = env != nullptr ? env : "../shared/golden";
    paths.push_back(golden + "/models/llama-kq-Q4_K_M.gguf");
    for (const char* name : {"phi-3", "mpt", "deepseek-llm", "starcoder"}) {
      paths.push_back(golden + "/tokenizers/ggml-vocab-" + name + ".gguf");
    }
  }
  std::vector<Vocab> out;
  for (const std::string& path : paths) {
    auto file = pocketlm::GgufFile::Open(path);
    if (!file.ok()) continue;
    auto tok = pocketlm::Tokenizer::FromGguf(*file);
    if (!tok.ok()) continue;
    Vocab v{std::move(tok).value(), {}};
    for (int32_t id = 0; id < v.tokenizer->n_vocab(); ++id) {
      if (v.tokenizer->TokenAttributes(id) &
          (pocketlm::kAttrControl | pocketlm::kAttrUserDefined | pocketlm::kAttrUnknown)) {
        v.specials.push_back(v.tokenizer->TokenText(id));
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

void CheckAlignment(const pocketlm::Tokenizer& t, std::string_view text) {
  auto ids = t.Encode(text, /*add_special=*/false, /*parse_special=*/false);
  if (!ids.ok()) return;
  auto spans = pocketlm::AlignTokens(t, text, *ids);
  if (!spans.ok() || spans->size() != ids->size()) __builtin_trap();
  if (spans->empty()) return;
  if (spans->front().begin != 0 || spans->back().end != text.size()) __builtin_trap();
  for (size_t i = 0; i < spans->size(); ++i) {
    const pocketlm::TokenSpan& s = (*spans)[i];
    if (s.begin > s.end) __builtin_trap();
    if (i > 0 && !(s == (*spans)[i - 1] || s.begin == (*spans)[i - 1].end)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Vocab> vocabs = Load();
  if (vocabs.empty() || size == 0) return 0;
  const Vocab& v = vocabs[data[0] % vocabs.size()];
  const pocketlm::Tokenizer& t = *v.tokenizer;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  CheckAlignment(t, rest);

  std::vector<pocketlm::ChatSegment> segments;
  for (size_t pos = 0; pos <= rest.size();) {
    size_t end = rest.find('\xFF', pos);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view seg = rest.substr(pos, end - pos);
    pos = end + 1;
    if (seg.empty()) continue;
    const auto selector = static_cast<uint8_t>(seg[0]);
    seg.remove_prefix(1);
    pocketlm::ChatSegment s;
    switch (selector & 3) {
      case 0: s = {pocketlm::ChatSegment::kContent, std::string(seg), true}; break;
      case 1: s = {pocketlm::ChatSegment::kContent, std::string(seg), false}; break;
      case 2: s = {pocketlm::ChatSegment::kTemplateText, std::string(seg), (selector & 4) != 0}; break;
      default: {
        if (v.specials.empty() || seg.empty()) continue;
        const std::string& text = v.specials[static_cast<uint8_t>(seg[0]) % v.specials.size()];
        s = {pocketlm::ChatSegment::kSpecialToken, text, (selector & 4) != 0};
        break;
      }
    }
    segments.push_back(std::move(s));
  }
  auto chat = pocketlm::TokenizeChat(t, segments);
  if (!chat.ok()) {
    if (chat.status().code() != pocketlm::ErrorCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (chat->tokens.size() != chat->trainable.size()) __builtin_trap();
  return 0;
}
