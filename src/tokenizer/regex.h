// A small backtracking regex engine over Unicode code points, for pre-tokenizer split patterns (llama.cpp's
// regex lists in llama-vocab.cpp and Hugging Face tokenizer.json "Split" patterns).
//
// Supported syntax (ECMAScript-like semantics: leftmost match, alternatives tried in order, greedy quantifiers
// backtrack):
//   literals and escapes \t \n \r \f \v \0 \xHH \x{H..} \uHHHH \u{H..}, escaped punctuation
//   .  (any code point except \n \r U+2028 U+2029)      ^ $  (start / end of the subject, never multi-line)
//   [...] [^...] with ranges, \p{..} \P{..} \pL, \s \S \d \D \w \W inside or outside classes
//   \p{L} \p{N} \p{P} \p{S} \p{M} \p{Z} \p{C} and two-letter categories (\p{Lu}, \p{Nd}, ...)
//   ( ) (?: ) (?<name> ) (?P<name> )  groups (nothing is captured)     (?i: ) (?i) case-insensitive
//   (?= ) (?! ) lookahead, (?> ) atomic group
//   * + ? {m} {m,} {m,n}, each optionally lazy (?) or possessive (+)
// \s is the Unicode White_Space property, \d is Nd, \w is L|M|Nd|Pc (the Unicode meanings Oniguruma and
// Python `regex` use; ASCII-only patterns behave the same either way). Lookbehind and backreferences are
// rejected with an Unsupported error naming the construct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocketlm {

namespace regex_internal {
struct Program;
}

class Regex {
 public:
  // `pattern` is UTF-8. Errors name the pattern and the offending position.
  static Result<Regex> Compile(std::string_view pattern);

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Leftmost match in `subject` starting at or after `from`. The subject is the whole world: ^, $ and
  // lookahead do not see past its ends. Empty matches are reported like any other.
  bool Search(std::span<const uint32_t> subject, size_t from, size_t* match_begin, size_t* match_end) const;

  // Anchored match at `pos`; on success *match_end is where the (first, by priority) match ends. With
  // `not_empty`, empty matches are skipped in favour of the next non-empty one by priority.
  bool MatchAt(std::span<const uint32_t> subject, size_t pos, size_t* match_end, bool not_empty = false) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(std::string pattern, std::unique_ptr<regex_internal::Program> program);
  std::string pattern_;
  std::unique_ptr<regex_internal::Program> program_;
};

// Splits `cps` like llama.cpp's unicode_regex_split does for one regex: every match becomes a piece and the
// unmatched spans between matches stay pieces of their own. `pieces` holds lengths (in code points) of
// consecutive pieces covering `cps`; each is split independently and the refined lengths are returned.
std::vector<size_t> RegexSplit(const Regex& re, std::span<const uint32_t> cps, const std::vector<size_t>& pieces);

}  // namespace pocketlm
