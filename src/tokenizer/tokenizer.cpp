// Encoding: special-token partition, then SentencePiece-style or byte-level BPE on the text between
// (llama.cpp's llama_vocab::impl::tokenize, tokenizer_st_partition, llm_tokenizer_spm/bpe_session).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <queue>

#include "base/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode_nfc.h"

namespace pocketlm {

int32_t Tokenizer::Lookup(std::string_view text) const {
  auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::optional<int32_t> Tokenizer::FindToken(std::string_view text) const {
  const int32_t id = Lookup(text);
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

std::optional<int32_t> Tokenizer::FindSpecialToken(std::string_view text) const {
  const std::optional<int32_t> id = FindToken(text);
  return id && (TokenAttributes(*id) & kAttrSpecial) != 0 ? id : std::nullopt;
}

const std::string& Tokenizer::TokenText(int32_t id) const {
  static const std::string kEmpty;
  return (id >= 0 && id < n_vocab()) ? tokens_[id].text : kEmpty;
}

uint32_t Tokenizer::TokenAttributes(int32_t id) const {
  return (id >= 0 && id < n_vocab()) ? tokens_[id].attr : 0;
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return std::binary_search(eog_.begin(), eog_.end(), id);
}

// For each special token, longest first, every raw-text fragment is split at each occurrence; lstrip / rstrip
// tokens also swallow adjacent whitespace. Control and unknown tokens take part only with parse_special,
// user-defined ones always (llama.cpp follows Hugging Face tokenizers there).
std::vector<Tokenizer::Fragment> Tokenizer::PartitionSpecial(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_by_length_) {
    const TokenData& tok = tokens_[id];
    if (!parse_special && (tok.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view st = tok.text;
    next.clear();
    bool changed = false;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t off = fr.offset, len = fr.length;
      for (;;) {
        const size_t match = text.find(st, off);
        if (match == std::string_view::npos || match + st.size() > off + len) {
          next.push_back({-1, off, len});
          break;
        }
        changed = true;
        size_t left_len = match - off;
        if (tok.attr & kAttrLstrip) {
          while (left_len > 0 && std::isspace(static_cast<unsigned char>(text[off + left_len - 1]))) --left_len;
        }
        if (left_len > 0) next.push_back({-1, off, left_len});
        next.push_back({id, 0, 0});
        size_t right_off = match + st.size();
        size_t right_len = off + len - right_off;
        if (tok.attr & kAttrRstrip) {
          while (right_len > 0 && std::isspace(static_cast<unsigned char>(text[right_off]))) ++right_off, --right_len;
        }
        if (right_len == 0) break;
        off = right_off, len = right_len;
      }
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = PartitionSpecial(text, parse_special);
  if (add_special && add_bos_) out.push_back(bos_);  // load guarantees bos_ >= 0 when add_bos_
  bool prev_special = true;  // SPM: a space prefix goes on the first fragment and on any after a special token
  // The NFC normalizer (normalizes_nfc()) runs on the text between added tokens (they are matched in the raw
  // text: normalized = false in tokenizer.json), so only those fragments are normalized.
  const bool nfc = normalizes_nfc();
  std::string normalized;
  for (const Fragment& fr : frags) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    const std::string_view piece = text.substr(fr.offset, fr.length);
    if (type_ == VocabType::kSpm) {
      std::string escaped;
      if (add_space_prefix_ && prev_special) escaped = "\xE2\x96\x81";
      for (char c : piece) {
        if (c == ' ')
          escaped += "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
        else
          escaped.push_back(c);
      }
      EncodeSpm(escaped, &out);
    } else if (nfc && NormalizeNfc(piece, &normalized)) {
      EncodeBpe(normalized, &out);
    } else {
      EncodeBpe(piece, &out);
    }
    prev_special = false;
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

namespace {

struct Symbol {
  int prev, next;
  size_t start, len;  // bytes
};

// Length of the UTF-8 sequence a lead byte announces, 1 for continuation / invalid bytes (llama.cpp's
// unicode_len_utf8, which decides how both tokenizers cut text into initial symbols).
size_t LeadLength(char c) {
  static const size_t kLookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLookup[static_cast<uint8_t>(c) >> 4];
}

std::vector<Symbol> InitialSymbols(std::string_view text) {
  std::vector<Symbol> syms;
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(LeadLength(text[off]), text.size() - off);
    const int index = static_cast<int>(syms.size());
    syms.push_back({index - 1, off + n == text.size() ? -1 : index + 1, off, n});
    off += n;
  }
  return syms;
}

}  // namespace

// llm_tokenizer_spm_session: repeatedly merge the adjacent pair whose concatenation is a token with the highest
// score (ties: leftmost); leftover symbols that are not tokens become byte tokens.
void Tokenizer::EncodeSpm(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<Symbol> syms = InitialSymbols(text);
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto worse = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view pair = text.substr(syms[left].start, syms[left].len + syms[right].len);
    const int32_t id = Lookup(pair);
    if (id < 0) return;
    queue.push({left, right, tokens_[id].score, pair.size()});
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = syms.empty() ? -1 : 0; i != -1; i = syms[i].next) {
    const std::string_view s = text.substr(syms[i].start, syms[i].len);
    const int32_t id = Lookup(s);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (char c : s) {
      const int32_t b = byte_tokens_[static_cast<uint8_t>(c)];
      if (b >= 0)
        out->push_back(b);
      else if (unk_ >= 0)
        out->push_back(unk_);  // llama.cpp would throw here; the vocab has no byte tokens
    }
  }
}

void Tokenizer::EncodeBpe(std::string_view text, std::vector<int32_t>* out) const {
  // Code points with their byte spans; an invalid byte stands as U+FFFD for the pre-tokenizer.
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;  // byte offset of each code point, plus the end
  for (size_t pos = 0; pos < text.size();) {
    offsets.push_back(pos);
    uint32_t cp = 0;
    if (!DecodeUtf8(text, &pos, &cp)) cp = 0xFFFD;
    cps.push_back(cp);
  }
  offsets.push_back(text.size());
  size_t first = 0;
  std::string word;
  for (size_t len : pre_tokenizer_->Split(cps)) {
    word.clear();
    AppendByteEncoded(text.substr(offsets[first], offsets[first + len] - offsets[first]), &word);
    first += len;
    MergeBpeWord(word, out);
  }
}

// llm_tokenizer_bpe_session for one pre-token (already byte-encoded): merge the adjacent pair with the lowest
// merge rank (ties: leftmost) until none applies.
void Tokenizer::MergeBpeWord(const std::string& word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int32_t id = Lookup(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms = InitialSymbols(word);
  std::vector<int32_t> ids(syms.size());
  for (size_t i = 0; i < syms.size(); ++i) ids[i] = Lookup(std::string_view(word).substr(syms[i].start, syms[i].len));
  struct Bigram {
    int32_t rank;
    int left, right;
    size_t left_len, right_len;
    int32_t result;
  };
  auto worse = [](const Bigram& l, const Bigram& r) {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0 || ids[left] < 0 || ids[right] < 0) return;
    const uint64_t key = (static_cast<uint64_t>(ids[left]) << 32) | static_cast<uint32_t>(ids[right]);
    auto it = merges_.find(key);
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, syms[left].len, syms[right].len, it->second.result});
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    // Stale when either side changed since the pair was queued (llama.cpp compares the texts).
    if (l.len == 0 || r.len == 0 || l.len != b.left_len || r.len != b.right_len || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    ids[b.left] = b.result;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = 0; i != -1; i = syms[i].next) {
    if (ids[i] >= 0) {
      out->push_back(ids[i]);
      continue;
    }
    // Not a token: llama.cpp falls back to single bytes that happen to be tokens, dropping the rest.
    for (char c : std::string_view(word).substr(syms[i].start, syms[i].len)) {
      if (const int32_t id = Lookup(std::string_view(&c, 1)); id >= 0) out->push_back(id);
    }
  }
}

}  // namespace pocketlm
