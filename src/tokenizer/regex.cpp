// Backtracking VM for tokenizer/regex.h. Threads are (pc, pos) pairs on an explicit stack, so deep inputs do
// not recurse; only lookahead / atomic groups recurse, bounded by the pattern's nesting.
#include "tokenizer/regex.h"

#include <algorithm>
#include <cstdint>

#include "tokenizer/regex_program.h"

namespace pocketlm {
namespace regex_internal {

bool CharClass::MatchesRaw(uint32_t cp) const {
  for (const auto& [lo, hi] : ranges) {
    if (cp >= lo && cp <= hi) return true;
  }
  if (space && IsWhitespace(cp)) return true;
  if (not_space && !IsWhitespace(cp)) return true;
  if (categories != 0 && InCategories(cp, categories)) return true;
  if (not_categories != 0 && !InCategories(cp, not_categories)) return true;
  return false;
}

bool CharClass::Matches(uint32_t cp) const {
  bool m = MatchesRaw(cp);
  if (!m && icase) {
    const uint32_t lower = ToLower(cp), upper = ToUpper(cp);
    m = (lower != cp && MatchesRaw(lower)) || (upper != cp && MatchesRaw(upper));
  }
  return m != negate;
}

namespace {

bool IsLineTerminator(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x2028 || cp == 0x2029;
}

bool SameChar(uint32_t a, uint32_t b, bool icase) {
  if (a == b) return true;
  return icase && (ToLower(a) == ToLower(b) || ToUpper(a) == ToUpper(b));
}

struct Frame {
  uint32_t pc;  // kRestore: register index
  bool restore;
  size_t pos;  // kRestore: value to put back
};

// Runs the (sub-)program at `pc` anchored at `pos`. With `not_empty`, a match of length zero is rejected and
// backtracking continues (the retry std::regex_iterator makes after an empty match).
bool Run(const Program& prog, std::span<const uint32_t> s, uint32_t pc0, size_t pos0, bool not_empty,
         std::vector<size_t>& regs, size_t* end) {
  std::vector<Frame> stack;
  stack.push_back({pc0, false, pos0});
  const size_t n = s.size();
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    if (f.restore) {
      regs[f.pc] = f.pos;
      continue;
    }
    uint32_t pc = f.pc;
    size_t pos = f.pos;
    for (bool alive = true; alive;) {
      const Inst& in = prog.insts[pc];
      switch (in.op) {
        case Op::kChar:
          alive = pos < n && SameChar(s[pos], in.a, in.b != 0);
          ++pos, ++pc;
          break;
        case Op::kClass:
          alive = pos < n && prog.classes[in.a].Matches(s[pos]);
          ++pos, ++pc;
          break;
        case Op::kAny:
          alive = pos < n && !IsLineTerminator(s[pos]);
          ++pos, ++pc;
          break;
        case Op::kBegin:
          alive = pos == 0;
          ++pc;
          break;
        case Op::kEnd:
          alive = pos == n;
          ++pc;
          break;
        case Op::kSplit:
          stack.push_back({in.b, false, pos});
          pc = in.a;
          break;
        case Op::kJmp: pc = in.a; break;
        case Op::kSetReg:
          stack.push_back({in.a, true, regs[in.a]});
          regs[in.a] = pos;
          ++pc;
          break;
        case Op::kProgress:
          alive = regs[in.a] != pos;
          ++pc;
          break;
        case Op::kLook: {
          size_t sub_end = 0;
          const bool m = Run(prog, s, in.a, pos, false, regs, &sub_end);
          alive = m != (in.b != 0);
          pc = in.c;
          break;
        }
        case Op::kAtomic: {
          size_t sub_end = 0;
          alive = Run(prog, s, in.a, pos, false, regs, &sub_end);
          pos = sub_end;
          pc = in.c;
          break;
        }
        case Op::kMatch:
          if (not_empty && pos == pos0) {
            alive = false;
            break;
          }
          *end = pos;
          return true;
      }
    }
  }
  return false;
}

}  // namespace
}  // namespace regex_internal

Regex::Regex(std::string pattern, std::unique_ptr<regex_internal::Program> program)
    : pattern_(std::move(pattern)), program_(std::move(program)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

Result<Regex> Regex::Compile(std::string_view pattern) {
  auto program = std::make_unique<regex_internal::Program>();
  PLM_RETURN_IF_ERROR(regex_internal::CompilePattern(pattern, program.get()));
  return Regex(std::string(pattern), std::move(program));
}

bool Regex::MatchAt(std::span<const uint32_t> subject, size_t pos, size_t* match_end, bool not_empty) const {
  std::vector<size_t> regs(program_->num_regs, SIZE_MAX);
  return regex_internal::Run(*program_, subject, 0, pos, not_empty, regs, match_end);
}

bool Regex::Search(std::span<const uint32_t> subject, size_t from, size_t* match_begin, size_t* match_end) const {
  std::vector<size_t> regs(program_->num_regs, SIZE_MAX);
  for (size_t start = from; start <= subject.size(); ++start) {
    if (regex_internal::Run(*program_, subject, 0, start, false, regs, match_end)) {
      *match_begin = start;
      return true;
    }
  }
  return false;
}

std::vector<size_t> RegexSplit(const Regex& re, std::span<const uint32_t> cps, const std::vector<size_t>& pieces) {
  std::vector<size_t> out;
  out.reserve(pieces.size());
  size_t base = 0;
  for (size_t len : pieces) {
    const auto sub = cps.subspan(base, len);
    size_t last = 0;  // end of the previous piece emitted
    size_t pos = 0;
    bool retry_not_empty = false;
    while (pos <= len) {
      size_t b = 0, e = 0;
      bool found = false;
      if (retry_not_empty) {
        // After an empty match std::regex_iterator first retries at the same place for a non-empty match.
        found = re.MatchAt(sub, pos, &e, /*not_empty=*/true);
        b = pos;
        retry_not_empty = false;
        if (!found) {
          ++pos;
          continue;
        }
      } else {
        found = re.Search(sub, pos, &b, &e);
      }
      if (!found) break;
      if (b > last) out.push_back(b - last);
      if (e > b) out.push_back(e - b);
      last = std::max(last, e);
      if (e == b) {
        retry_not_empty = true;
        pos = b;
        last = b;
      } else {
        pos = e;
      }
    }
    if (last < len) out.push_back(len - last);
    base += len;
  }
  return out;
}

}  // namespace pocketlm
