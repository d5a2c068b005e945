// Parser (pattern -> syntax tree) and compiler (tree -> backtracking VM program) for tokenizer/regex.h.
#include <string>
#include <vector>

#include "base/utf8.h"
#include "tokenizer/regex_program.h"

namespace pocketlm::regex_internal {
namespace {

constexpr int kUnbounded = -1;
constexpr int kMaxDepth = 200;            // nesting of groups; patterns come from files
constexpr size_t kMaxProgram = 1u << 20;  // instructions, after expanding {m,n}
constexpr int kMaxRepeat = 100000;

struct Node {
  enum Kind { kEmpty, kChar, kClass, kAny, kBegin, kEnd, kConcat, kAlt, kRepeat, kLook, kAtomic } kind = kEmpty;
  uint32_t cp = 0;
  bool icase = false;
  uint32_t cls = 0;
  std::vector<Node> kids;
  int min = 0, max = 0;
  bool greedy = true;
  bool negate = false;  // kLook: negative lookahead
};

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kEmpty:
    case Node::kBegin:
    case Node::kEnd:
    case Node::kLook: return true;
    case Node::kChar:
    case Node::kClass:
    case Node::kAny: return false;
    case Node::kConcat:
      for (const Node& k : n.kids)
        if (!Nullable(k)) return false;
      return true;
    case Node::kAlt:
      for (const Node& k : n.kids)
        if (Nullable(k)) return true;
      return false;
    case Node::kRepeat: return n.min == 0 || Nullable(n.kids[0]);
    case Node::kAtomic: return Nullable(n.kids[0]);
  }
  return true;
}

class Parser {
 public:
  Parser(std::string_view pattern, Program* prog) : pattern_(pattern), prog_(prog) {}

  Status Parse(Node* out) {
    size_t pos = 0;
    while (pos < pattern_.size()) {
      uint32_t cp = 0;
      if (!DecodeUtf8(pattern_, &pos, &cp)) return Error("invalid UTF-8 in pattern");
      p_.push_back(cp);
    }
    PLM_RETURN_IF_ERROR(ParseAlt(out));
    if (i_ < p_.size()) return Error("unmatched ')'");
    return Status::Ok();
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument("regex '" + std::string(pattern_) + "': " + what + " at code point " + std::to_string(i_));
  }
  Status Unsupported(const std::string& what) const {
    return pocketlm::Unsupported("regex '" + std::string(pattern_) + "': " + what + " (at code point " +
                                 std::to_string(i_) + ") is not supported");
  }
  bool More() const { return i_ < p_.size(); }
  uint32_t Peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }
  bool Eat(uint32_t c) {
    if (More() && p_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Status ParseAlt(Node* out) {
    if (++depth_ > kMaxDepth) return Error("groups nested too deeply");
    const bool saved_icase = icase_;  // (?i) lasts to the end of the enclosing group
    Node alt;
    alt.kind = Node::kAlt;
    for (;;) {
      Node seq;
      PLM_RETURN_IF_ERROR(ParseSeq(&seq));
      alt.kids.push_back(std::move(seq));
      if (!Eat('|')) break;
    }
    icase_ = saved_icase;
    --depth_;
    *out = alt.kids.size() == 1 ? std::move(alt.kids[0]) : std::move(alt);
    return Status::Ok();
  }

  Status ParseSeq(Node* out) {
    out->kind = Node::kConcat;
    while (More() && Peek() != '|' && Peek() != ')') {
      Node atom;
      bool have = false;
      PLM_RETURN_IF_ERROR(ParseAtom(&atom, &have));
      if (!have) continue;  // e.g. an inline flag group
      PLM_RETURN_IF_ERROR(ParseQuantifier(&atom));
      out->kids.push_back(std::move(atom));
    }
    return Status::Ok();
  }

  // {m}, {m,}, {m,n}; returns false (consuming nothing) when the brace is not a quantifier.
  bool ParseBraces(int* min, int* max) {
    size_t j = i_ + 1;
    auto number = [&](int* v) {
      size_t start = j;
      long long x = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9' && x <= kMaxRepeat) x = x * 10 + (p_[j++] - '0');
      *v = static_cast<int>(x);
      return j > start;
    };
    if (!number(min)) return false;
    *max = *min;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(max)) *max = kUnbounded;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    i_ = j + 1;
    return true;
  }

  Status ParseQuantifier(Node* atom) {
    for (;;) {
      int min = 0, max = 0;
      if (Eat('*')) {
        min = 0, max = kUnbounded;
      } else if (Eat('+')) {
        min = 1, max = kUnbounded;
      } else if (Eat('?')) {
        min = 0, max = 1;
      } else if (Peek() == '{' && ParseBraces(&min, &max)) {
        if (min > kMaxRepeat || max > kMaxRepeat) return Error("repetition count too large");
        if (max != kUnbounded && max < min) return Error("{m,n} with n < m");
      } else {
        return Status::Ok();
      }
      if (atom->kind == Node::kBegin || atom->kind == Node::kEnd || atom->kind == Node::kLook) {
        return Error("quantifier after an assertion");
      }
      Node rep;
      rep.kind = Node::kRepeat;
      rep.min = min;
      rep.max = max;
      if (Eat('?')) rep.greedy = false;
      const bool possessive = Eat('+');
      rep.kids.push_back(std::move(*atom));
      if (possessive) {  // x*+ == (?>x*)
        Node atomic;
        atomic.kind = Node::kAtomic;
        atomic.kids.push_back(std::move(rep));
        *atom = std::move(atomic);
      } else {
        *atom = std::move(rep);
      }
    }
  }

  Status ParseGroup(Node* out, bool* have) {
    // '(' already consumed.
    Node::Kind kind = Node::kConcat;
    bool negate = false;
    const bool saved_icase = icase_;
    if (Eat('?')) {
      if (Eat(':')) {
      } else if (Eat('=')) {
        kind = Node::kLook;
      } else if (Eat('!')) {
        kind = Node::kLook, negate = true;
      } else if (Eat('>')) {
        kind = Node::kAtomic;
      } else if (Peek() == '<' && (Peek(1) == '=' || Peek(1) == '!')) {
        return Unsupported("lookbehind");
      } else if (Eat('<') || (Peek() == 'P' && Peek(1) == '<' && Eat('P') && Eat('<'))) {  // name is ignored
        while (More() && Peek() != '>') ++i_;
        if (!Eat('>')) return Error("unterminated group name");
      } else if (Peek() == 'i' || Peek() == '-') {
        bool on = true;
        bool flag_icase = icase_;
        while (More() && Peek() != ':' && Peek() != ')') {
          uint32_t f = p_[i_++];
          if (f == '-')
            on = false;
          else if (f == 'i')
            flag_icase = on;
          else
            return Unsupported(std::string("inline flag '") + static_cast<char>(f < 128 ? f : '?') + "'");
        }
        if (Eat(')')) {  // (?i): applies to the rest of the enclosing group
          icase_ = flag_icase;
          *have = false;
          return Status::Ok();
        }
        if (!Eat(':')) return Error("unterminated flag group");
        icase_ = flag_icase;
      } else {
        return Unsupported("group syntax '(?" + std::string(1, static_cast<char>(Peek() < 128 ? Peek() : '?')) + "'");
      }
    }
    Node body;
    PLM_RETURN_IF_ERROR(ParseAlt(&body));
    icase_ = saved_icase;
    if (!Eat(')')) return Error("missing ')'");
    if (kind == Node::kConcat) {
      *out = std::move(body);
    } else {
      out->kind = kind;
      out->negate = negate;
      out->kids.push_back(std::move(body));
    }
    *have = true;
    return Status::Ok();
  }

  Status ParseHex(size_t max_digits, bool braced, uint32_t* cp) {
    uint32_t v = 0;
    size_t n = 0;
    while (More() && n < max_digits) {
      uint32_t c = Peek();
      int d = (c >= '0' && c <= '9')   ? int(c - '0')
              : (c >= 'a' && c <= 'f') ? int(c - 'a' + 10)
              : (c >= 'A' && c <= 'F') ? int(c - 'A' + 10)
                                       : -1;
      if (d < 0) break;
      v = v * 16 + static_cast<uint32_t>(d);
      ++i_, ++n;
    }
    if (n == 0 || (braced && !Eat('}')) || v > 0x10FFFF) return Error("bad hex escape");
    if (!braced && n != max_digits) return Error("bad hex escape");
    *cp = v;
    return Status::Ok();
  }

  // After '\'. Sets *is_class and fills *cls for class escapes, else *cp.
  Status ParseEscape(uint32_t* cp, CharClass* cls, bool* is_class) {
    *is_class = false;
    if (!More()) return Error("trailing backslash");
    const uint32_t c = p_[i_++];
    switch (c) {
      case 't': *cp = '\t'; return Status::Ok();
      case 'n': *cp = '\n'; return Status::Ok();
      case 'r': *cp = '\r'; return Status::Ok();
      case 'f': *cp = '\f'; return Status::Ok();
      case 'v': *cp = '\v'; return Status::Ok();
      case '0': *cp = 0; return Status::Ok();
      case 'x': return Eat('{') ? ParseHex(8, true, cp) : ParseHex(2, false, cp);
      case 'u': return Eat('{') ? ParseHex(8, true, cp) : ParseHex(4, false, cp);
      case 's':
      case 'S':
        *is_class = true;
        (c == 's' ? cls->space : cls->not_space) = true;
        return Status::Ok();
      case 'd':
      case 'D':
      case 'w':
      case 'W': {
        *is_class = true;
        CategoryMask m = CategoryBit(GeneralCategory::kNd);
        if (c == 'w' || c == 'W') {
          m |= *ParseCategoryName("L") | *ParseCategoryName("M") | CategoryBit(GeneralCategory::kPc);
        }
        (c == 'd' || c == 'w' ? cls->categories : cls->not_categories) |= m;
        return Status::Ok();
      }
      case 'p':
      case 'P': {
        std::string name;
        if (Eat('{')) {
          while (More() && Peek() != '}') name.push_back(static_cast<char>(p_[i_++] & 0x7F));
          if (!Eat('}')) return Error("unterminated \\p{");
        } else if (More()) {
          name.push_back(static_cast<char>(p_[i_++] & 0x7F));
        }
        auto mask = ParseCategoryName(name);
        if (!mask) return Unsupported("Unicode property '" + name + "'");
        *is_class = true;
        (c == 'p' ? cls->categories : cls->not_categories) |= *mask;
        return Status::Ok();
      }
      default:
        if ((c >= '1' && c <= '9') || c == 'k') return Unsupported("backreference");
        if (c == 'b' || c == 'B' || c == 'A' || c == 'z' || c == 'Z' || c == 'G') {
          return Unsupported(std::string("anchor \\") + static_cast<char>(c));
        }
        if (c < 128 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
          return Unsupported(std::string("escape \\") + static_cast<char>(c));
        }
        *cp = c;  // escaped punctuation or any non-ASCII code point
        return Status::Ok();
    }
  }

  Status ParseBracket(Node* out) {
    // '[' already consumed.
    CharClass cls;
    cls.icase = icase_;
    cls.negate = Eat('^');
    bool first = true;
    for (;;) {
      if (!More()) return Error("missing ']'");
      if (Peek() == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      uint32_t lo = p_[i_++];
      if (lo == '\\') {
        CharClass sub;
        bool is_class = false;
        PLM_RETURN_IF_ERROR(ParseEscape(&lo, &sub, &is_class));
        if (is_class) {
          cls.categories |= sub.categories;
          cls.not_categories |= sub.not_categories;
          cls.space |= sub.space;
          cls.not_space |= sub.not_space;
          continue;
        }
      }
      uint32_t hi = lo;
      if (Peek() == '-' && Peek(1) != ']' && i_ + 1 < p_.size()) {
        ++i_;
        hi = p_[i_++];
        if (hi == '\\') {
          CharClass sub;
          bool is_class = false;
          PLM_RETURN_IF_ERROR(ParseEscape(&hi, &sub, &is_class));
          if (is_class) return Error("class escape as a range end");
        }
        if (hi < lo) return Error("range out of order");
      }
      cls.ranges.emplace_back(lo, hi);
    }
    out->kind = Node::kClass;
    out->cls = static_cast<uint32_t>(prog_->classes.size());
    prog_->classes.push_back(std::move(cls));
    return Status::Ok();
  }

  Status ParseAtom(Node* out, bool* have) {
    *have = true;
    const uint32_t c = p_[i_++];
    switch (c) {
      case '(': return ParseGroup(out, have);
      case '[': return ParseBracket(out);
      case '.': out->kind = Node::kAny; return Status::Ok();
      case '^': out->kind = Node::kBegin; return Status::Ok();
      case '$': out->kind = Node::kEnd; return Status::Ok();
      case '*':
      case '+':
      case '?': return Error("quantifier without an operand");
      case '\\': {
        CharClass cls;
        uint32_t cp = 0;
        bool is_class = false;
        PLM_RETURN_IF_ERROR(ParseEscape(&cp, &cls, &is_class));
        if (is_class) {
          cls.icase = icase_;
          out->kind = Node::kClass;
          out->cls = static_cast<uint32_t>(prog_->classes.size());
          prog_->classes.push_back(std::move(cls));
        } else {
          out->kind = Node::kChar, out->cp = cp, out->icase = icase_;
        }
        return Status::Ok();
      }
      default: out->kind = Node::kChar, out->cp = c, out->icase = icase_; return Status::Ok();
    }
  }

  std::string_view pattern_;
  Program* prog_;
  std::vector<uint32_t> p_;
  size_t i_ = 0;
  bool icase_ = false;
  int depth_ = 0;
};

class Compiler {
 public:
  explicit Compiler(Program* prog) : prog_(prog) {}

  Status Emit(const Node& n) {
    if (prog_->insts.size() > kMaxProgram) return InvalidArgument("regex too large after expanding repetitions");
    auto& code = prog_->insts;
    switch (n.kind) {
      case Node::kEmpty: return Status::Ok();
      case Node::kChar: code.push_back({Op::kChar, n.cp, n.icase ? 1u : 0u}); return Status::Ok();
      case Node::kClass: code.push_back({Op::kClass, n.cls}); return Status::Ok();
      case Node::kAny: code.push_back({Op::kAny}); return Status::Ok();
      case Node::kBegin: code.push_back({Op::kBegin}); return Status::Ok();
      case Node::kEnd: code.push_back({Op::kEnd}); return Status::Ok();
      case Node::kConcat:
        for (const Node& k : n.kids) PLM_RETURN_IF_ERROR(Emit(k));
        return Status::Ok();
      case Node::kAlt: {
        std::vector<size_t> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          size_t split = 0;
          const bool last = i + 1 == n.kids.size();
          if (!last) {
            split = code.size();
            code.push_back({Op::kSplit, Here() + 1, 0});
          }
          PLM_RETURN_IF_ERROR(Emit(n.kids[i]));
          if (!last) {
            jumps.push_back(code.size());
            code.push_back({Op::kJmp});
            code[split].b = Here();
          }
        }
        for (size_t j : jumps) code[j].a = Here();
        return Status::Ok();
      }
      case Node::kRepeat: return EmitRepeat(n);
      case Node::kLook:
      case Node::kAtomic: {
        const size_t at = code.size();
        code.push_back({n.kind == Node::kLook ? Op::kLook : Op::kAtomic, Here() + 1, n.negate ? 1u : 0u});
        PLM_RETURN_IF_ERROR(Emit(n.kids[0]));
        code.push_back({Op::kMatch});
        code[at].c = Here();
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

 private:
  uint32_t Here() const { return static_cast<uint32_t>(prog_->insts.size()); }

  Status EmitRepeat(const Node& n) {
    auto& code = prog_->insts;
    const Node& body = n.kids[0];
    for (int i = 0; i < n.min; ++i) PLM_RETURN_IF_ERROR(Emit(body));
    if (n.max == kUnbounded) {
      // L: split B, OUT; B: [setreg] body [progress]; jmp L; OUT:
      const bool guard = Nullable(body);
      const uint32_t reg = guard ? prog_->num_regs++ : 0;
      const uint32_t loop = Here();
      code.push_back({Op::kSplit});
      const uint32_t start = Here();
      if (guard) code.push_back({Op::kSetReg, reg});
      PLM_RETURN_IF_ERROR(Emit(body));
      if (guard) code.push_back({Op::kProgress, reg});
      code.push_back({Op::kJmp, loop});
      SetSplit(loop, start, Here(), n.greedy);
      return Status::Ok();
    }
    // Optional copies nest: x{0,2} == (x(x)?)?, every split exits to the same place.
    std::vector<uint32_t> splits;
    for (int i = n.min; i < n.max; ++i) {
      splits.push_back(Here());
      code.push_back({Op::kSplit});
      PLM_RETURN_IF_ERROR(Emit(body));
      if (code.size() > kMaxProgram) return InvalidArgument("regex too large after expanding repetitions");
    }
    for (uint32_t s : splits) SetSplit(s, s + 1, Here(), n.greedy);
    return Status::Ok();
  }

  void SetSplit(uint32_t at, uint32_t take, uint32_t skip, bool greedy) {
    Inst& in = prog_->insts[at];
    in.a = greedy ? take : skip;
    in.b = greedy ? skip : take;
  }

  Program* prog_;
};

}  // namespace

Status CompilePattern(std::string_view pattern, Program* out) {
  Node root;
  Parser parser(pattern, out);
  PLM_RETURN_IF_ERROR(parser.Parse(&root));
  Compiler compiler(out);
  PLM_RETURN_IF_ERROR(compiler.Emit(root));
  out->insts.push_back({Op::kMatch});
  return Status::Ok();
}

}  // namespace pocketlm::regex_internal
