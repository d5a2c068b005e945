// libFuzzer target: arbitrary bytes as text through Encode (with and without special-token parsing), Decode and
// the streaming detokenizer. The vocab comes from $PLM_FUZZ_VOCAB (default
// ../shared/golden/tokenizers/ggml-vocab-gpt-2.gguf relative to the working directory); without a loadable
// vocab every input is a no-op. For byte-level BPE vocabs that contain all 256 byte symbols, decoding must give
// the input back exactly (invalid UTF-8 included), so a mismatch traps.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "io/gguf/gguf_reader.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Fixture {
  std::unique_ptr<pocketlm::Tokenizer> tokenizer;
  bool lossless = false;  // byte-level BPE with every byte symbol present
};

Fixture Load() {
  Fixture fx;
  const char* env = std::getenv("PLM_FUZZ_VOCAB");
  const std::string path = env != nullptr ? env : "../shared/golden/tokenizers/ggml-vocab-gpt-2.gguf";
  auto file = pocketlm::GgufFile::Open(path);
  if (!file.ok()) return fx;
  auto tok = pocketlm::Tokenizer::FromGguf(*file);
  if (!tok.ok()) return fx;
  fx.tokenizer = std::move(tok).value();
  if (fx.tokenizer->type() == pocketlm::VocabType::kBpe) {
    fx.lossless = true;
    for (int b = 0; b < 256; ++b) {
      std::string sym;
      pocketlm::AppendByteEncoded(std::string(1, static_cast<char>(b)), &sym);
      if (!fx.tokenizer->FindToken(sym)) fx.lossless = false;
    }
  }
  return fx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fx = Load();
  if (!fx.tokenizer) return 0;
  const pocketlm::Tokenizer& t = *fx.tokenizer;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool parse_special : {false, true}) {
    auto ids = t.Encode(text, /*add_special=*/true, parse_special);
    if (!ids.ok()) continue;
    const std::string decoded = t.Decode(*ids);
    (void)t.Decode(*ids, pocketlm::DecodeOptions{true, true, true});
    pocketlm::StreamingDetokenizer stream(t);
    std::string streamed;
    for (int32_t id : *ids) streamed += stream.Push(id);
    streamed += stream.Flush();
    if (streamed != decoded) __builtin_trap();
    if (fx.lossless && !parse_special && !t.add_bos() && !t.add_eos() && decoded != text) __builtin_trap();
  }
  return 0;
}
