// Internal: the compiled form of a Regex (a program for a backtracking VM, after Pike / re1) and its parser.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "tokenizer/unicode.h"

namespace pocketlm::regex_internal {

// A bracket expression or class escape: matches when (ranges or categories or flags) hold, inverted by negate.
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  CategoryMask categories = 0;
  CategoryMask not_categories = 0;        // from \P{..} inside a class: matches code points outside these
  bool space = false, not_space = false;  // \s \S
  bool negate = false;
  bool icase = false;

  bool Matches(uint32_t cp) const;

 private:
  bool MatchesRaw(uint32_t cp) const;
};

enum class Op : uint8_t {
  kChar,      // a == code point (b != 0: case-insensitive)
  kClass,     // a == class index
  kAny,       // any except line terminators
  kBegin,     // at subject start
  kEnd,       // at subject end
  kSplit,     // try a, on failure b
  kJmp,       // goto a
  kSetReg,    // reg[a] = pos (undone on backtrack)
  kProgress,  // fail when pos == reg[a] (stops empty iterations of a loop whose body can match empty)
  kLook,      // run sub-program at a from pos; b = 1 negative; continue at c with pos unchanged
  kAtomic,    // run sub-program at a from pos; continue at c from its end, never backtracking into it
  kMatch,     // success (of the whole program or of a sub-program)
};

struct Inst {
  Op op;
  uint32_t a = 0;
  uint32_t b = 0;
  uint32_t c = 0;
};

struct Program {
  std::vector<Inst> insts;
  std::vector<CharClass> classes;
  uint32_t num_regs = 0;
};

// Parses and compiles `pattern` (UTF-8).
Status CompilePattern(std::string_view pattern, Program* out);

}  // namespace pocketlm::regex_internal
