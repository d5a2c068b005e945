#include <cstdio>
#include <iostream>
#include <iterator>

#include "io/gguf/gguf_reader.h"
#include "options.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm::cli {

int TokenizeCommand(const TokenizeOptions& o) {
  auto f = GgufFile::Open(o.vocab_path);
  if (!f.ok()) return Fail(f.status());
  auto tok = Tokenizer::FromGguf(*f);
  if (!tok.ok()) return Fail(tok.status());
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto ids = (*tok)->Encode(text, !o.no_bos, o.special);
  if (!ids.ok()) return Fail(ids.status());
  std::string out;
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i) out += ' ';
    out += std::to_string((*ids)[i]);
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace pocketlm::cli
