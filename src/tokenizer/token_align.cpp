// AlignTokens: token ids -> the bytes of the text each one stands for.
//
// A token's piece (TokenToPiece) is not a reliable image of the text it came from: SentencePiece encodes a text
// with " " replaced by "▁" (U+2581) and "▁" put in front, so a piece "▁in" stands for " in", but byte fallback
// spells a "▁" the vocabulary lacks as three byte tokens whose pieces are the bytes E2 96 81, which are not in
// the text, and a "▁" that was in the text also becomes " ". Byte-level BPE tokens are byte-encoded; an
// NFC-normalizing vocabulary encodes other bytes than the text holds; user-defined tokens are split out of the
// raw text before any of that and may swallow whitespace. So the alignment redoes Encode's steps instead:
//   1. Split the text at user-defined tokens as Tokenizer::PartitionSpecial does (parse_special = false).
//   2. For each text fragment, build the string the encoder merges (the "encoded" string: SentencePiece-escaped,
//      or NFC and byte-encoded) and a map from its byte positions back to the text, defined where a position is
//      also a position of the text.
//   3. Match the fragment's tokens against the encoded string: a token covers its vocabulary text there (every
//      merged symbol is looked up by its text) or, as byte fallback, one byte. Bytes the encoder could not spell
//      at all are dropped by it, and skipped here.
//   4. Cut the tokens into units at boundaries that map back to the text; a unit's tokens share its span.
#include "tokenizer/token_align.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <unordered_set>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_nfc.h"

namespace pocketlm {
namespace {

constexpr size_t kNoPos = static_cast<size_t>(-1);
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

bool IsSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}  // as Tokenizer::PartitionSpecial's lstrip / rstrip

struct Fragment {
  int32_t token;      // -1: text to encode; else a user-defined token split out of the text
  size_t begin, end;  // bytes of the text; a token's include the whitespace its lstrip / rstrip swallowed
};

// Tokenizer::PartitionSpecial with parse_special = false: user-defined tokens, longest text first (ties: lower id
// first, as its stable sort over ids), each splitting every text fragment at every occurrence. Only the tokens
// that occur in `ids` can have split anything, and the others would not have matched, so the replay with just
// those gives the same fragments.
std::vector<Fragment> Partition(const Tokenizer& tok, std::string_view text, std::span<const int32_t> ids) {
  std::vector<int32_t> specials;
  for (int32_t id : ids) {
    const uint32_t attr = tok.TokenAttributes(id);
    if ((attr & kAttrUserDefined) && !(attr & (kAttrControl | kAttrUnknown))) specials.push_back(id);
  }
  std::sort(specials.begin(), specials.end());
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());
  std::stable_sort(specials.begin(), specials.end(),
                   [&](int32_t a, int32_t b) { return tok.TokenText(a).size() > tok.TokenText(b).size(); });

  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : specials) {
    const std::string_view st = tok.TokenText(id);
    const uint32_t attr = tok.TokenAttributes(id);
    next.clear();
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t off = fr.begin, end = fr.end;
      for (;;) {
        const size_t match = text.find(st, off);
        if (match == std::string_view::npos || match + st.size() > end) {
          next.push_back({-1, off, end});
          break;
        }
        size_t left_end = match;
        if (attr & kAttrLstrip) {
          while (left_end > off && IsSpace(text[left_end - 1])) --left_end;
        }
        if (left_end > off) next.push_back({-1, off, left_end});
        size_t right = match + st.size();
        if (attr & kAttrRstrip) {
          while (right < end && IsSpace(text[right])) ++right;
        }
        next.push_back({id, left_end, right});
        if (right == end) break;
        off = right;
      }
    }
    frags.swap(next);
  }
  return frags;
}

class Aligner {
 public:
  Aligner(const Tokenizer& tok, std::string_view text, std::span<const int32_t> ids)
      : tok_(tok), text_(text), ids_(ids), spm_(tok.type() == VocabType::kSpm) {
    byte_token_.fill(kUnknownByteToken);
  }

  Result<std::vector<TokenSpan>> Run() {
    spans_.reserve(ids_.size());
    for (const Fragment& fr : Partition(tok_, text_, ids_)) {
      if (fr.token < 0) {
        PLM_RETURN_IF_ERROR(AlignFragment(fr.begin, fr.end));
        continue;
      }
      if (next_ >= ids_.size() || ids_[next_] != fr.token) return Mismatch(fr.begin);
      spans_.push_back({fr.begin, fr.end});
      ++next_;
    }
    if (next_ != ids_.size()) return Mismatch(text_.size());
    FillGaps();
    return std::move(spans_);
  }

 private:
  static constexpr int32_t kUnknownByteToken = -2;

  Status Mismatch(size_t at) const {
    std::string what = next_ < ids_.size() ? "token " + std::to_string(next_) + " (id " + std::to_string(ids_[next_]) +
                                                 ", '" + tok_.TokenText(ids_[next_]) + "')"
                                           : "the end of the tokens";
    return Unsupported("cannot align " + what + " with byte " + std::to_string(at) + " of the text: the tokens are " +
                       "not this vocabulary's encoding of the text");
  }

  // SentencePiece's byte-fallback token for byte `c` (llama_vocab::byte_to_token: "<0xXX>", else the byte as a
  // one-character token), -1 if none; looked up on first use.
  int32_t ByteToken(char c) {
    int32_t& id = byte_token_[static_cast<uint8_t>(c)];
    if (id == kUnknownByteToken) {
      static const char* kHex = "0123456789ABCDEF";
      const uint8_t b = static_cast<uint8_t>(c);
      const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      std::optional<int32_t> found = tok_.FindToken(std::string_view(name, 6));
      if (!found) found = tok_.FindToken(std::string_view(&c, 1));
      id = found.value_or(-1);
    }
    return id;
  }

  // Whether the encoder can leave byte `c` of a symbol that is not a token out of its output: SentencePiece when
  // the byte has no byte token (it then emits <unk> if the vocabulary has one, else nothing), byte-level BPE when
  // the byte (of the byte-encoded text) is not a one-byte token.
  bool Droppable(char c) { return spm_ ? ByteToken(c) < 0 : !tok_.FindToken(std::string_view(&c, 1)); }

  // The string EncodeSpm / EncodeBpe merges for text_[begin, end) into encoded_, and in raw_at_ for each of its
  // positions the text position it corresponds to, or kNoPos inside the encoding of one text byte.
  void BuildEncoded(size_t begin, size_t end) {
    encoded_.clear();
    raw_at_.clear();
    const std::string_view raw = text_.substr(begin, end - begin);
    auto append = [&](std::string_view bytes, size_t raw_pos) {
      raw_at_.push_back(raw_pos);
      raw_at_.insert(raw_at_.end(), bytes.size() - 1, kNoPos);
      encoded_ += bytes;
    };
    if (spm_) {
      // Encode: "▁" in front of every text fragment (each one starts the text or follows a user-defined token),
      // and every " " as "▁". A "▁" already in the text stays three bytes of the text.
      if (tok_.add_space_prefix()) append(kSpaceMarker, begin);
      for (size_t i = 0; i < raw.size(); ++i) append(raw[i] == ' ' ? kSpaceMarker : raw.substr(i, 1), begin + i);
    } else {
      std::string normalized;
      const bool changed = tok_.normalizes_nfc() && NormalizeNfc(raw, &normalized);
      const std::string_view bytes = changed ? std::string_view(normalized) : raw;
      std::string one;
      for (size_t i = 0; i < bytes.size(); ++i) {
        one.clear();
        AppendByteEncoded(bytes.substr(i, 1), &one);
        append(one, changed ? kNoPos : begin + i);
      }
      if (!raw_at_.empty()) raw_at_[0] = begin;
    }
    raw_at_.push_back(end);
  }

  // A state of the match (the next token to place, the encoded position it starts at) and the way on from it
  // taken last: the token covers `taken` encoded bytes, or (drop) one encoded byte is covered by no token.
  struct Frame {
    size_t token, pos;
    int stage = 0;  // how many of NextMove's alternatives have been offered
    size_t taken = 0;
    bool drop = false;
  };

  // Alternatives in order of preference: the token's own text (for byte and unknown tokens first the one-byte
  // fallback they usually are), then the other one, then leaving the byte out.
  bool NextMove(Frame& f) {
    const std::string_view rest = std::string_view(encoded_).substr(f.pos);
    const bool have_token = f.token < ids_.size();
    const int32_t id = have_token ? ids_[f.token] : -1;
    const uint32_t attr = tok_.TokenAttributes(id);
    const bool fallback_first = spm_ && (attr & (kAttrByte | kAttrUnknown));
    while (f.stage < 3) {
      const int stage = f.stage++;
      f.drop = false;
      if (stage == 2) {
        if (!Droppable(rest[0])) continue;
        f.drop = true;
        f.taken = 1;
        return true;
      }
      if (!have_token) continue;
      if ((stage == 0) != fallback_first) {
        const std::string& t = tok_.TokenText(id);
        if (!rest.starts_with(t)) continue;
        f.taken = t.size();
        return true;
      }
      if (!spm_) continue;
      // EncodeSpm spells a symbol that is not a token byte by byte: the byte token, else <unk>, else nothing.
      const int32_t byte_token = ByteToken(rest[0]);
      if (byte_token == id || ((attr & kAttrUnknown) && byte_token < 0)) {
        f.taken = 1;
        return true;
      }
    }
    return false;
  }

  // Matches the next tokens against encoded_ (a depth-first search; it backtracks only where a token could be
  // read two ways, which real vocabularies almost never allow) and appends their spans.
  Status AlignFragment(size_t begin, size_t end) {
    BuildEncoded(begin, end);
    const size_t n = encoded_.size();
    const size_t first = next_;
    std::vector<Frame> path = {Frame{first, 0}};
    std::unordered_set<uint64_t> failed;  // (token - first) * (n + 1) + pos of states that cannot reach the end
    auto key = [&](size_t token, size_t pos) { return static_cast<uint64_t>(token - first) * (n + 1) + pos; };
    // Bounds the search on adversarial input (ids that are not Encode's): real matches take one step per token
    // and dropped byte.
    size_t budget = 8 * (n + (ids_.size() - first)) + 64;
    while (path.back().pos != n) {
      if (budget-- == 0) return Mismatch(begin);
      Frame& f = path.back();
      if (!NextMove(f)) {
        failed.insert(key(f.token, f.pos));
        path.pop_back();
        if (path.empty()) return Mismatch(begin);
        continue;
      }
      const Frame to{f.drop ? f.token : f.token + 1, f.pos + f.taken};
      if (!failed.contains(key(to.token, to.pos))) path.push_back(to);
    }
    // Tokens with their encoded ranges, then units: a cut between two tokens goes at the last position in the
    // gap between them (dropped bytes) that maps back to the text; without one, the tokens share a unit.
    struct Covered {
      size_t from, to;  // encoded bytes
    };
    std::vector<Covered> covered;
    for (size_t k = 0; k + 1 < path.size(); ++k) {
      if (!path[k].drop) covered.push_back({path[k].pos, path[k].pos + path[k].taken});
    }
    next_ = path.back().token;
    size_t unit_from = 0;  // encoded position where the current unit starts; 0 and n always map back
    size_t unit_first = 0;
    for (size_t k = 0; k < covered.size(); ++k) {
      size_t cut = kNoPos;
      if (k + 1 == covered.size()) {
        cut = n;
      } else {
        for (size_t q = covered[k + 1].from + 1; q-- > covered[k].to;) {
          if (raw_at_[q] != kNoPos) {
            cut = q;
            break;
          }
        }
      }
      if (cut == kNoPos) continue;
      const TokenSpan span{raw_at_[unit_from], raw_at_[cut]};
      spans_.insert(spans_.end(), k + 1 - unit_first, span);
      unit_from = cut;
      unit_first = k + 1;
    }
    return Status::Ok();
  }

  // Bytes in no span (a fragment the encoder dropped entirely) go to the unit before them, or the first unit.
  void FillGaps() {
    if (spans_.empty()) return;
    auto extend_end = [&](size_t last, size_t to) {
      const TokenSpan unit = spans_[last];
      for (size_t j = last + 1; j-- > 0 && spans_[j] == unit;) spans_[j].end = to;
    };
    if (spans_[0].begin != 0) {
      const TokenSpan unit = spans_[0];
      for (size_t j = 0; j < spans_.size() && spans_[j] == unit; ++j) spans_[j].begin = 0;
    }
    for (size_t i = 1; i < spans_.size(); ++i) {
      if (spans_[i] != spans_[i - 1] && spans_[i].begin > spans_[i - 1].end) extend_end(i - 1, spans_[i].begin);
    }
    if (spans_.back().end < text_.size()) extend_end(spans_.size() - 1, text_.size());
  }

  const Tokenizer& tok_;
  const std::string_view text_;
  const std::span<const int32_t> ids_;
  const bool spm_;
  std::array<int32_t, 256> byte_token_;
  std::vector<TokenSpan> spans_;
  size_t next_ = 0;             // first token not aligned yet
  std::string encoded_;         // of the current text fragment
  std::vector<size_t> raw_at_;  // per position of encoded_ (and its end): text position or kNoPos
};

}  // namespace

Result<std::vector<TokenSpan>> AlignTokens(const Tokenizer& tokenizer, std::string_view text,
                                           std::span<const int32_t> ids) {
  return Aligner(tokenizer, text, ids).Run();
}

}  // namespace pocketlm
