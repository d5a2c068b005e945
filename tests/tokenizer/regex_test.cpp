// Regex engine: each supported construct against hand-computed matches, plus the Unicode category tables.
#include "tokenizer/regex.h"

#include <gtest/gtest.h>

#include "base/utf8.h"
#include "tokenizer/unicode.h"

namespace pocketlm {
namespace {

std::vector<uint32_t> Cps(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t pos = 0; pos < s.size();) {
    uint32_t cp = 0;
    EXPECT_TRUE(DecodeUtf8(s, &pos, &cp));
    out.push_back(cp);
  }
  return out;
}

// Length in code points of the match at position 0, or -1.
int MatchLen(std::string_view pattern, std::string_view text) {
  auto re = Regex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << pattern << ": " << re.status().message();
  if (!re.ok()) return -2;
  const auto cps = Cps(text);
  size_t end = 0;
  return re->MatchAt(cps, 0, &end) ? static_cast<int>(end) : -1;
}

std::vector<size_t> Split(std::string_view pattern, std::string_view text) {
  auto re = Regex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << re.status().message();
  const auto cps = Cps(text);
  return RegexSplit(*re, cps, {cps.size()});
}

TEST(RegexTest, LiteralsAndAlternationAreLeftmostFirst) {
  EXPECT_EQ(MatchLen("abc", "abcd"), 3);
  EXPECT_EQ(MatchLen("abc", "abd"), -1);
  EXPECT_EQ(MatchLen("ab|a", "ab"), 2);
  EXPECT_EQ(MatchLen("a|ab", "ab"), 1);  // first alternative wins, not the longest
  EXPECT_EQ(MatchLen("x|y|z", "z"), 1);
}

TEST(RegexTest, GroupsAndQuantifiers) {
  EXPECT_EQ(MatchLen("(?:ab)+", "ababa"), 4);
  EXPECT_EQ(MatchLen("(ab)*c", "ababc"), 5);
  EXPECT_EQ(MatchLen("(?<name>a)b", "ab"), 2);
  EXPECT_EQ(MatchLen("a?b", "b"), 1);
  EXPECT_EQ(MatchLen("a{2}", "aaa"), 2);
  EXPECT_EQ(MatchLen("a{2,}", "aaaa"), 4);
  EXPECT_EQ(MatchLen("a{2,}", "a"), -1);
  EXPECT_EQ(MatchLen("\\p{N}{1,3}", "12345"), 3);
  EXPECT_EQ(MatchLen("a+?", "aaa"), 1);      // lazy
  EXPECT_EQ(MatchLen("a*?b", "aab"), 3);     // lazy still extends to find b
  EXPECT_EQ(MatchLen("a*+a", "aaa"), -1);    // possessive never gives back
  EXPECT_EQ(MatchLen("(?>a*)b", "aab"), 3);  // atomic group
  EXPECT_EQ(MatchLen("a{,2}", "a{,2}"), 5);  // not a quantifier: literal braces
}

TEST(RegexTest, EmptyLoopsTerminate) {
  EXPECT_EQ(MatchLen("(a*)*", "aaa"), 3);
  EXPECT_EQ(MatchLen("(a|)*b", "aab"), 3);
  EXPECT_EQ(MatchLen("(?:)*", "x"), 0);
}

TEST(RegexTest, ClassesAndEscapes) {
  EXPECT_EQ(MatchLen("[a-c]+", "abcd"), 3);
  EXPECT_EQ(MatchLen("[^a-c]+", "xyza"), 3);
  EXPECT_EQ(MatchLen("[\\r\\n]+", "\r\n\nx"), 3);
  EXPECT_EQ(MatchLen("[\\-.]+", "-.-a"), 3);
  EXPECT_EQ(MatchLen("\\x41\\u0042\\u{1F999}", "AB\xF0\x9F\xA6\x99"), 3);
  EXPECT_EQ(MatchLen("\\$\\+\\.", "$+."), 3);
  EXPECT_EQ(MatchLen(".+", "ab\ncd"), 2);            // dot stops at a line terminator
  EXPECT_EQ(MatchLen("[(\\s|.,!?)]+", "(| ,x"), 4);  // '(' and '|' are literal inside a class
}

TEST(RegexTest, UnicodeCategories) {
  EXPECT_EQ(MatchLen("\\p{L}+", "h\xC3\xA9llo1"), 5);  // é is a letter
  EXPECT_EQ(MatchLen("\\p{N}+",
                     "\xC2\xBD"
                     "3a"),
            2);  // ½ is No
  EXPECT_EQ(MatchLen("\\p{Lu}", "A"), 1);
  EXPECT_EQ(MatchLen("\\p{Lu}", "a"), -1);
  EXPECT_EQ(MatchLen("\\p{Ll}\\p{Lt}", "a\xC7\x85"), 2);  // ǅ is Lt
  EXPECT_EQ(MatchLen("\\p{P}", "!"), 1);
  EXPECT_EQ(MatchLen("\\p{P}", "$"), -1);                   // $ is Sc
  EXPECT_EQ(MatchLen("\\p{S}+", "$+\xF0\x9F\x98\x81"), 3);  // Sc, Sm, So (😁)
  EXPECT_EQ(MatchLen("e\\p{M}", "e\xCC\x81"), 2);           // combining acute
  EXPECT_EQ(MatchLen("\\P{L}+", "12a"), 2);
  EXPECT_EQ(MatchLen("\\pN", "7"), 1);
  EXPECT_EQ(MatchLen("[^\\s\\p{L}\\p{N}]+", "?!x"), 2);
  EXPECT_EQ(MatchLen("[\\p{L}\\p{M}]+", "e\xCC\x81x1"), 3);
  EXPECT_EQ(MatchLen("\\d+",
                     "\xD9\xA3"
                     "1a"),
            2);  // Arabic-Indic three is Nd
  EXPECT_EQ(MatchLen("\\w+", "a_1-"), 3);
}

TEST(RegexTest, WhitespaceIsUnicodeWhiteSpace) {
  EXPECT_EQ(MatchLen("\\s+", " \t\n\v\f\r\xC2\x85\xC2\xA0\xE3\x80\x80x"), 9);  // incl. NEL, NBSP, U+3000
  EXPECT_EQ(MatchLen("\\s", "\xE2\x80\x8B"), -1);                              // U+200B is not White_Space
  EXPECT_EQ(MatchLen("\\s", "\x1C"), -1);                                      // nor are the ASCII separators
  EXPECT_EQ(MatchLen("\\S+", "ab c"), 2);
}

TEST(RegexTest, LookaheadAndAnchors) {
  EXPECT_EQ(MatchLen("\\s+(?!\\S)", "   x"), 2);  // gives back one space so the next pre-token keeps it
  EXPECT_EQ(MatchLen("\\s+(?!\\S)", "   "), 3);   // at the end of the subject (?!\S) holds
  EXPECT_EQ(MatchLen("\\s+(?!\\S)", " x"), -1);
  EXPECT_EQ(MatchLen("a(?=b)", "ab"), 1);
  EXPECT_EQ(MatchLen("a(?=b)", "ac"), -1);
  EXPECT_EQ(MatchLen("^a", "a"), 1);
  EXPECT_EQ(MatchLen("a$", "ab"), -1);
  EXPECT_EQ(MatchLen("\\s+$", "  "), 2);
}

TEST(RegexTest, CaseInsensitive) {
  EXPECT_EQ(MatchLen("(?i:'s|'t)", "'S"), 2);
  EXPECT_EQ(MatchLen("(?i:'s|'t)x", "'TX"), -1);  // the flag ends with the group
  EXPECT_EQ(MatchLen("(?i)abc", "AbC"), 3);
  EXPECT_EQ(MatchLen("(?i:\xC3\xA9)", "\xC3\x89"), 1);  // é / É
  EXPECT_EQ(MatchLen("(?i:[a-c]+)", "AbCd"), 3);
}

TEST(RegexTest, CompileErrorsNameTheProblem) {
  for (const char* bad : {"(", "a)", "[abc", "[b-a]", "a{3,2}", "*a", "\\", "\\xZZ"}) {
    auto re = Regex::Compile(bad);
    ASSERT_FALSE(re.ok()) << bad;
    EXPECT_EQ(re.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(re.status().message().find(bad), std::string::npos) << re.status().message();
  }
  for (const char* unsupported : {"(?<=a)b", "(?<!a)b", "(a)\\1", "\\p{Foo}", "\\bx", "(?x)a"}) {
    auto re = Regex::Compile(unsupported);
    ASSERT_FALSE(re.ok()) << unsupported;
    EXPECT_EQ(re.status().code(), ErrorCode::kUnsupported) << unsupported << ": " << re.status().message();
  }
}

TEST(RegexTest, SplitKeepsUnmatchedSpans) {
  const char* gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
  EXPECT_EQ(Split(gpt2, "Hello world  !!"), (std::vector<size_t>{5, 6, 1, 3}));
  EXPECT_EQ(Split(gpt2, "it's"), (std::vector<size_t>{2, 2}));
  EXPECT_EQ(Split(gpt2, "a\tb"), (std::vector<size_t>{1, 1, 1}));  // lone \t before a letter: unmatched
  EXPECT_EQ(Split("[0-9]{3}", "a1234"), (std::vector<size_t>{1, 3, 1}));
  EXPECT_EQ(Split("x", ""), (std::vector<size_t>{}));
  // Pieces are split independently: a match never crosses a piece boundary.
  auto re = Regex::Compile("a+");
  ASSERT_TRUE(re.ok());
  const auto cps = Cps("aaaa");
  EXPECT_EQ(RegexSplit(*re, cps, {2, 2}), (std::vector<size_t>{2, 2}));
}

TEST(UnicodeTest, Categories) {
  EXPECT_EQ(GetCategory('A'), GeneralCategory::kLu);
  EXPECT_EQ(GetCategory('a'), GeneralCategory::kLl);
  EXPECT_EQ(GetCategory('5'), GeneralCategory::kNd);
  EXPECT_EQ(GetCategory(0xBD), GeneralCategory::kNo);
  EXPECT_EQ(GetCategory(0x4E00), GeneralCategory::kLo);  // CJK range from a First/Last pair
  EXPECT_EQ(GetCategory(0x1F600), GeneralCategory::kSo);
  EXPECT_EQ(GetCategory(0xE000), GeneralCategory::kCo);
  EXPECT_EQ(GetCategory(0xD800), GeneralCategory::kCs);
  EXPECT_EQ(GetCategory(0x0378), GeneralCategory::kCn);  // unassigned
  EXPECT_EQ(GetCategory(0x110000), GeneralCategory::kCn);
  EXPECT_EQ(GetCategory(0x10FFFF), GeneralCategory::kCn);
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_FALSE(IsWhitespace(0x200B));
  EXPECT_EQ(ToLower('A'), uint32_t{'a'});
  EXPECT_EQ(ToUpper(0xE9), 0xC9u);
  EXPECT_EQ(ToLower('1'), uint32_t{'1'});
}

}  // namespace
}  // namespace pocketlm
