// Decoding: llama.cpp's llama_vocab::impl::token_to_piece and detokenize, plus a streaming wrapper.
#include <cstdio>

#include "base/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// llama_decode_text: byte-level code points back to bytes; a code point outside the alphabet is rendered the way
// llama.cpp does ("[UNK_BYTE_0x..<text>]") so outputs stay comparable.
std::string ByteDecode(const std::string& text) {
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    uint32_t cp = 0;
    const bool ok = DecodeUtf8(text, &pos, &cp);
    const int b = ok ? ByteFromCodepoint(cp) : -1;
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (size_t i = start; i < pos; ++i) {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", static_cast<uint8_t>(text[i]));
      out += hex;
    }
    out += text + "]";
  }
  return out;
}

}  // namespace

std::string Tokenizer::Piece(int32_t id, bool unparse_special) const {
  if (id < 0 || id >= n_vocab()) return {};
  const TokenData& tok = tokens_[id];
  const uint32_t special = kAttrUnknown | kAttrControl;
  if (!unparse_special && (tok.attr & special)) return {};
  if (tok.attr & (special | kAttrUserDefined)) return tok.text;
  if (type_ == VocabType::kSpm) {
    if (tok.attr & kAttrNormal) {
      std::string out;
      for (size_t i = 0; i < tok.text.size(); ++i) {
        if (tok.text.compare(i, 3, "\xE2\x96\x81") == 0) {
          out.push_back(' ');
          i += 2;
        } else {
          out.push_back(tok.text[i]);
        }
      }
      return out;
    }
    if (tok.attr & kAttrByte) {
      // "<0xXX>"; llama.cpp parses text[3..5) as hex.
      if (tok.text.size() < 5) return {};
      const int hi = HexDigit(tok.text[3]), lo = HexDigit(tok.text[4]);
      if (hi < 0 || lo < 0) return {};
      return std::string(1, static_cast<char>(hi * 16 + lo));
    }
    return {};  // unused / undefined types print nothing, as in llama.cpp
  }
  if (tok.attr & kAttrNormal) return ByteDecode(tok.text);
  return {};
}

std::string Tokenizer::TokenToPiece(int32_t id) const {
  return Piece(id, /*unparse_special=*/false);
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, const DecodeOptions& options) const {
  size_t begin = 0, end = ids.size();
  bool remove_space = add_space_prefix_;
  if (options.remove_special && add_bos_ && end > begin && ids[begin] == bos_) {
    remove_space = false;
    ++begin;
  }
  if (options.remove_special && add_eos_ && end > begin && ids[end - 1] == eos_) --end;
  std::string text;
  for (size_t i = begin; i < end; ++i) {
    std::string piece = Piece(ids[i], options.unparse_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    text += piece;
  }
  if (!options.clean_up_spaces || !clean_spaces_) return text;

  // llama.cpp's three clean-up passes (clean_up_tokenization_spaces).
  auto pass = [](const std::string& in, auto&& keep) {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) keep(in, i, &out);
    return out;
  };
  text = pass(text, [](const std::string& s, size_t i, std::string* o) {
    const char x = s[i];
    if (i > 0 && s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) o->pop_back();
    o->push_back(x);
  });
  std::string t2;
  bool zapped = false;  // llama.cpp overwrites the skipped space with '\0', which the next step then sees
  for (size_t i = 0; i < text.size(); ++i) {  // " ' " -> "'"
    const char x = text[i];
    const char prev = i == 0 ? '\0' : (zapped ? '\0' : text[i - 1]);
    zapped = false;
    if (i > 0 && x == '\'' && i + 1 < text.size() && prev == ' ' && text[i + 1] == ' ') {
      t2.pop_back();
      t2.push_back(x);
      ++i;
      zapped = true;
      continue;
    }
    t2.push_back(x);
  }
  return pass(t2, [](const std::string& s, size_t i, std::string* o) {
    const char x = s[i];
    if (i > 0 && s[i - 1] == ' ' && x == '\'' && i + 1 < s.size()) {
      const char x1 = s[i + 1];
      const char x2 = i + 2 < s.size() ? s[i + 2] : '\0';
      if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) o->pop_back();
    }
    o->push_back(x);
  });
}

std::string StreamingDetokenizer::Push(int32_t id) {
  std::string piece = tokenizer_.TokenToPiece(id);
  if (first_ && tokenizer_.add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  first_ = false;
  pending_ += piece;
  const size_t hold = IncompleteUtf8Suffix(pending_);
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamingDetokenizer::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace pocketlm
