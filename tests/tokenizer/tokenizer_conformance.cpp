// tokenizer_conformance VOCAB.gguf INP OUT
// Encodes every test string of INP (strings separated by "\n__ggml_vocab_test__\n", exactly as llama.cpp's
// tests/test-tokenizer-0.cpp splits them) with add_special = false and parse_special = false, as that test
// does, and requires the ids on the matching line of OUT. Also checks that decoding gives the string back for
// byte-level BPE vocabs (any string) and SentencePiece vocabs (modulo the space prefix rule, see below).
// `tokenizer_conformance --skip` reports the golden directory as missing (exit 77).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace {

constexpr int kSkip = 77;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

std::string Ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else
      out.push_back(static_cast<char>(c));
  }
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pocketlm;
  if (argc == 2 && std::string(argv[1]) == "--skip") {
    std::printf("SKIPPED: ../shared/golden not found\n");
    return kSkip;
  }
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s VOCAB.gguf INP OUT\n", argv[0]);
    return 2;
  }
  std::string inp, outp;
  if (!ReadFile(argv[2], &inp) || !ReadFile(argv[3], &outp)) {
    std::printf("SKIPPED: cannot read %s or %s\n", argv[2], argv[3]);
    return kSkip;
  }
  auto file = GgufFile::Open(argv[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "FAIL: %s\n", file.status().message().c_str());
    return 1;
  }
  auto tok = Tokenizer::FromGguf(*file);
  if (!tok.ok()) {
    std::fprintf(stderr, "FAIL: %s\n", tok.status().message().c_str());
    return 1;
  }
  const Tokenizer& t = **tok;

  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> strings;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      strings.push_back(inp.substr(pos));
      break;
    }
    strings.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(outp);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    expected.emplace_back();
    for (int32_t id; ids >> id;) expected.back().push_back(id);
  }
  if (strings.size() != expected.size() || strings.empty()) {
    std::fprintf(stderr, "FAIL: %zu test strings but %zu expected lines\n", strings.size(), expected.size());
    return 1;
  }

  int failures = 0, roundtrip_failures = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string& s = strings[i];
    auto got = t.Encode(s, /*add_special=*/false, /*parse_special=*/false);
    if (!got.ok()) {
      std::fprintf(stderr, "FAIL: encoding %s: %s\n", Quote(s).c_str(), got.status().message().c_str());
      return 1;
    }
    if (*got != expected[i]) {
      if (failures++ == 0) {
        std::fprintf(stderr, "FAIL: string %zu %s\n  expected: %s\n  got:      %s\n", i, Quote(s).c_str(),
                     Ids(expected[i]).c_str(), Ids(*got).c_str());
      }
      continue;
    }
    // Round trip: byte-level BPE is lossless; SentencePiece removes exactly the one leading space it added
    // (llama_detokenize's remove_space), so every string comes back for both kinds of vocab.
    const std::string back = t.Decode(*got);
    if (back != s) {
      if (roundtrip_failures++ == 0) {
        std::fprintf(stderr, "FAIL: round trip of string %zu %s gave %s\n", i, Quote(s).c_str(), Quote(back).c_str());
      }
    }
  }
  std::printf("%s: %zu strings, %d token mismatches, %d round-trip mismatches\n", argv[1], strings.size(), failures,
              roundtrip_failures);
  return (failures == 0 && roundtrip_failures == 0) ? 0 : 1;
}
