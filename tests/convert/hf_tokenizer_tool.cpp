// hf_tokenizer_tool: the C++ half of the real-tokenizer tests (run_tokenizer_test.sh).
//   hf_tokenizer_tool import DIR OUT.gguf      tokenizer.json (+ tokenizer_config.json) -> vocab-only GGUF
//   hf_tokenizer_tool compare VOCAB.gguf CASES.json
//       CASES.json = [{"text": "...", "ids": [...]}, ...] from a reference tokenizer (no BOS/EOS, special token
//       texts parsed, as transformers.js encodes with add_special_tokens = false); prints the agreement count and
//       the first mismatches, exit 1 unless every case agrees.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert/hf_tokenizer.h"
#include "io/gguf/gguf_stream_writer.h"
#include "tokenizer/tokenizer.h"

using namespace pocketlm;

namespace {

std::string Ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

int Import(const std::string& dir, const std::string& out) {
  auto kv = convert::ImportHfTokenizer({dir, 0});
  if (!kv.ok()) {
    std::fprintf(stderr, "error: %s\n", kv.status().message().c_str());
    return 1;
  }
  convert::KvList all;
  all.Str("general.architecture", "llama");
  all.Str("general.name", "vocab-only");
  all.Append(std::move(kv).value());
  auto w = GgufStreamWriter::Create(out, kGgufDefaultAlignment, all.kvs(), {});
  Status s = w.ok() ? w->Commit() : w.status();
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

int Compare(const std::string& vocab, const std::string& cases_path) {
  auto f = GgufFile::Open(vocab);
  if (!f.ok()) {
    std::fprintf(stderr, "error: %s\n", f.status().message().c_str());
    return 1;
  }
  auto tok = Tokenizer::FromGguf(*f);
  if (!tok.ok()) {
    std::fprintf(stderr, "error: %s\n", tok.status().message().c_str());
    return 1;
  }
  std::ifstream in(cases_path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json cases = nlohmann::json::parse(text, nullptr, false);
  if (!cases.is_array()) {
    std::fprintf(stderr, "error: %s is not a JSON array\n", cases_path.c_str());
    return 1;
  }
  size_t equal = 0, shown = 0;
  for (const auto& c : cases) {
    const std::string s = c.at("text").get<std::string>();
    const std::vector<int32_t> want = c.at("ids").get<std::vector<int32_t>>();
    auto got = (*tok)->Encode(s, /*add_special=*/false, /*parse_special=*/true);
    if (got.ok() && *got == want) {
      ++equal;
      continue;
    }
    if (shown++ < 8) {
      std::printf("MISMATCH %s\n  reference: %s\n  pocketlm:  %s\n", nlohmann::json(s).dump().c_str(),
                  Ids(want).c_str(), got.ok() ? Ids(*got).c_str() : got.status().message().c_str());
    }
  }
  std::printf("%s: %zu/%zu lines give equal token ids\n", cases_path.c_str(), equal, cases.size());
  return equal == cases.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "import") return Import(argv[2], argv[3]);
  if (argc == 4 && std::string(argv[1]) == "compare") return Compare(argv[2], argv[3]);
  std::fprintf(stderr, "usage: %s import DIR OUT.gguf | compare VOCAB.gguf CASES.json\n", argv[0]);
  return 2;
}
