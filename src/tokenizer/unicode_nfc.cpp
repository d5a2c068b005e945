// NFC per UAX #15 (https://www.unicode.org/reports/tr15/) and Unicode 15 section 3.11 (decomposition, canonical
// ordering, canonical composition) and 3.12 (Hangul). Text is scanned with the NFC quick check (UAX #15 section 9);
// only the segments around code points that fail it are normalized, each from the last stable code point
// (ccc 0 and NFC_QC = Yes, where NFC splits text into independent parts) to the next.
#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/utf8.h"
#include "tokenizer/unicode_nfc_tables.h"

namespace pocketlm {
namespace {

using unicode_data::NfcRange;

// Hangul syllable arithmetic (Unicode 15 section 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr uint32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Range lookup that remembers the last range found: text in one script keeps hitting the same range.
class NfcProps {
 public:
  const NfcRange& Get(uint32_t cp) {
    if (cp - lo_ >= hi_ - lo_) {
      const NfcRange* begin = unicode_data::kNfcRanges;
      const NfcRange* end = begin + unicode_data::kNumNfcRanges;
      // Last range starting at or before cp (the first starts at 0).
      const NfcRange* it = std::upper_bound(begin, end, cp, [](uint32_t v, const NfcRange& r) { return v < r.first; });
      range_ = it - 1;
      lo_ = range_->first;
      hi_ = it == end ? 0x110000 : it->first;
    }
    return *range_;
  }
  uint8_t Ccc(uint32_t cp) { return Get(cp).ccc; }

 private:
  uint32_t lo_ = 0, hi_ = 0;  // [lo_, hi_) is covered by *range_; empty at first
  const NfcRange* range_ = nullptr;
};

struct CodePoint {
  uint32_t cp;
  uint8_t ccc;
};

// Appends the full canonical decomposition of `cp` (the table holds them already expanded).
void Decompose(uint32_t cp, NfcProps* props, std::vector<CodePoint>* out) {
  if (cp - kSBase < kSCount) {
    const uint32_t s = cp - kSBase;
    out->push_back({kLBase + s / kNCount, 0});
    out->push_back({kVBase + (s % kNCount) / kTCount, 0});
    if (s % kTCount != 0) out->push_back({kTBase + s % kTCount, 0});
    return;
  }
  const auto* begin = unicode_data::kDecompositions;
  const auto* end = begin + unicode_data::kNumDecompositions;
  const auto* it = std::lower_bound(begin, end, cp, [](const auto& d, uint32_t v) { return d.cp < v; });
  if (it == end || it->cp != cp) {
    out->push_back({cp, props->Ccc(cp)});
    return;
  }
  for (uint32_t i = 0; i < it->length; ++i) {
    const uint32_t c = unicode_data::kDecompositionData[it->offset + i];
    out->push_back({c, props->Ccc(c)});
  }
}

// Primary composite of the pair, 0 when there is none.
uint32_t Compose(uint32_t first, uint32_t second) {
  if (first - kLBase < kLCount && second - kVBase < kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first - kSBase < kSCount && (first - kSBase) % kTCount == 0 && second - kTBase - 1 < kTCount - 1) {
    return first + (second - kTBase);
  }
  const auto* begin = unicode_data::kCompositions;
  const auto* end = begin + unicode_data::kNumCompositions;
  const uint64_t key = (uint64_t{first} << 32) | second;
  const auto* it = std::lower_bound(begin, end, key, [](const unicode_data::Composition& c, uint64_t v) {
    return ((uint64_t{c.first} << 32) | c.second) < v;
  });
  return (it != end && it->first == first && it->second == second) ? it->composite : 0;
}

// Appends NFC of `segment`, which is valid UTF-8 (the scanner cuts segments at invalid bytes).
void NormalizeSegment(std::string_view segment, NfcProps* props, std::vector<CodePoint>* buf, std::string* out) {
  buf->clear();
  for (size_t pos = 0; pos < segment.size();) {
    uint32_t cp = 0;
    if (!DecodeUtf8(segment, &pos, &cp)) cp = 0xFFFD;  // unreachable; keeps the function total
    Decompose(cp, props, buf);
  }
  // Canonical ordering: stable sort of every run of non-starters by combining class. A sort, not the textbook
  // bubble, so a long run of marks cannot take quadratic time.
  CodePoint* const data = buf->data();
  const size_t n = buf->size();
  for (size_t i = 0; i < n;) {
    if (data[i].ccc == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && data[j].ccc != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(data + i, data + j, [](const CodePoint& a, const CodePoint& b) { return a.ccc < b.ccc; });
    }
    i = j;
  }
  // Canonical composition: each code point combines with the last starter unless blocked, i.e. unless something
  // kept between them is a starter or has a combining class >= its own. Everything kept after the starter is a
  // non-starter in ascending class order, so the last one kept decides.
  size_t kept = 0;
  size_t starter = SIZE_MAX;  // none yet: text may begin with non-starters, which nothing composes with
  uint8_t last_ccc = 0;       // of the last code point kept
  for (size_t i = 0; i < n; ++i) {
    const CodePoint c = data[i];
    if (starter != SIZE_MAX && (kept - 1 == starter || last_ccc < c.ccc)) {
      if (const uint32_t composite = Compose(data[starter].cp, c.cp); composite != 0) {
        data[starter].cp = composite;  // composites are starters (others are excluded from composition)
        continue;
      }
    }
    if (c.ccc == 0) starter = kept;
    last_ccc = c.ccc;
    data[kept++] = c;
  }
  for (size_t i = 0; i < kept; ++i) AppendUtf8(data[i].cp, out);
}

bool IsAscii8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return (w & 0x8080808080808080ull) == 0;
}

}  // namespace

bool NormalizeNfc(std::string_view s, std::string* out) {
  NfcProps props;
  std::vector<CodePoint> buf;
  std::string result, segment_nfc;
  bool changed = false;
  size_t copied = 0;    // s[0, copied) is accounted for in `result`
  size_t boundary = 0;  // where a segment to normalize would begin: the last stable code point, or after an
                        // invalid byte
  uint8_t last_ccc = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {  // ASCII is stable
      while (pos + 8 <= s.size() && IsAscii8(s.data() + pos)) pos += 8;
      while (pos < s.size() && static_cast<uint8_t>(s[pos]) < 0x80) ++pos;
      boundary = pos - 1;
      last_ccc = 0;
      continue;
    }
    const size_t start = pos;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &pos, &cp)) {  // an invalid byte: kept as is; segments start after it
      boundary = pos;
      last_ccc = 0;
      continue;
    }
    const NfcRange& p = props.Get(cp);
    if (p.qc == unicode_data::kNfcYes) {
      if (p.ccc == 0) {
        boundary = start;
        last_ccc = 0;
        continue;
      }
      if (last_ccc <= p.ccc) {  // still canonically ordered
        last_ccc = p.ccc;
        continue;
      }
    }
    // Quick check says No or Maybe: normalize [boundary, end), end being the next stable code point.
    size_t end = pos;
    while (end < s.size()) {
      size_t next = end;
      if (!DecodeUtf8(s, &next, &cp)) break;
      const NfcRange& q = props.Get(cp);
      if (q.ccc == 0 && q.qc == unicode_data::kNfcYes) break;
      end = next;
    }
    const std::string_view segment = s.substr(boundary, end - boundary);
    segment_nfc.clear();
    NormalizeSegment(segment, &props, &buf, &segment_nfc);
    if (segment_nfc != segment) {
      if (!changed) result.reserve(s.size() + 16);
      changed = true;
      result.append(s.substr(copied, boundary - copied));
      result += segment_nfc;
      copied = end;
    }
    pos = end;
    boundary = end;
    last_ccc = 0;
  }
  if (!changed) return false;
  result.append(s.substr(copied));
  *out = std::move(result);
  return true;
}

std::string ToNfc(std::string_view utf8) {
  std::string out;
  if (!NormalizeNfc(utf8, &out)) out.assign(utf8);
  return out;
}

}  // namespace pocketlm
