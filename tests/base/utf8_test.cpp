// UTF-8 decoding and validation against RFC 3629 (no overlongs, no surrogates, nothing above U+10FFFF).
#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pocketlm {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(Utf8Test, DecodesEveryLengthAtItsBoundaries) {
  struct Case {
    std::string s;
    uint32_t cp;
  };
  const std::vector<Case> cases = {
      {Bytes({0x00}), 0x00},
      {Bytes({0x7F}), 0x7F},
      {Bytes({0xC2, 0x80}), 0x80},
      {Bytes({0xDF, 0xBF}), 0x7FF},
      {Bytes({0xE0, 0xA0, 0x80}), 0x800},
      {Bytes({0xED, 0x9F, 0xBF}), 0xD7FF},
      {Bytes({0xEE, 0x80, 0x80}), 0xE000},
      {Bytes({0xEF, 0xBF, 0xBF}), 0xFFFF},
      {Bytes({0xF0, 0x90, 0x80, 0x80}), 0x10000},
      {Bytes({0xF0, 0x9F, 0x98, 0x80}), 0x1F600},
      {Bytes({0xF4, 0x8F, 0xBF, 0xBF}), 0x10FFFF},
  };
  for (const auto& c : cases) {
    size_t pos = 0;
    uint32_t cp = 0xFFFFFFFF;
    ASSERT_TRUE(DecodeUtf8(c.s, &pos, &cp)) << std::hex << c.cp;
    EXPECT_EQ(cp, c.cp);
    EXPECT_EQ(pos, c.s.size());
    EXPECT_TRUE(IsValidUtf8(c.s));
  }
}

TEST(Utf8Test, AppendRoundTripsEveryScalarValue) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    AppendUtf8(cp, &s);
    size_t pos = 0;
    uint32_t got = 0;
    ASSERT_TRUE(DecodeUtf8(s, &pos, &got)) << std::hex << cp;
    ASSERT_EQ(got, cp);
    ASSERT_EQ(pos, s.size());
    const size_t want_len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    ASSERT_EQ(s.size(), want_len) << std::hex << cp;
    ASSERT_EQ(Utf8SequenceLength(static_cast<uint8_t>(s[0])), want_len);
  }
}

TEST(Utf8Test, RejectsInvalidSequencesAndSkipsOneByte) {
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"overlong NUL (2 bytes)", Bytes({0xC0, 0x80})},
      {"overlong '/' (C1)", Bytes({0xC1, 0xAF})},
      {"overlong U+7FF in 3 bytes", Bytes({0xE0, 0x9F, 0xBF})},
      {"overlong U+FFFF in 4 bytes", Bytes({0xF0, 0x8F, 0xBF, 0xBF})},
      {"surrogate D800", Bytes({0xED, 0xA0, 0x80})},
      {"surrogate DFFF", Bytes({0xED, 0xBF, 0xBF})},
      {"U+110000", Bytes({0xF4, 0x90, 0x80, 0x80})},
      {"F5 lead", Bytes({0xF5, 0x80, 0x80, 0x80})},
      {"F8 lead (5-byte form)", Bytes({0xF8, 0x88, 0x80, 0x80, 0x80})},
      {"FF", Bytes({0xFF})},
      {"lone continuation", Bytes({0x80})},
      {"truncated 2-byte", Bytes({0xC3})},
      {"truncated 3-byte", Bytes({0xE2, 0x82})},
      {"truncated 4-byte", Bytes({0xF0, 0x9F, 0x98})},
      {"bad continuation", Bytes({0xE2, 0x28, 0xA1})},
      {"ASCII in place of continuation", Bytes({0xF0, 0x9F, 0x98, 0x41})},
  };
  for (const auto& [what, s] : bad) {
    size_t pos = 0;
    uint32_t cp = 0;
    EXPECT_FALSE(DecodeUtf8(s, &pos, &cp)) << what;
    EXPECT_EQ(pos, 1u) << what;
    EXPECT_FALSE(IsValidUtf8(s)) << what;
    EXPECT_FALSE(IsValidUtf8("ok" + s + "ok")) << what;
  }
}

TEST(Utf8Test, ValidatesMixedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("caf\xC3"));
  // An embedded NUL is a valid code point.
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

TEST(Utf8Test, IncompleteSuffixOnEverySplitOfAnEmoji) {
  const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600
  for (const std::string prefix : {"", "a", "ab", "abc", "\xC3\xA9", "\xE2\x82\xAC"}) {
    for (size_t k = 0; k <= emoji.size(); ++k) {
      const std::string s = prefix + emoji.substr(0, k);
      const size_t want = k == emoji.size() ? 0 : k;  // a complete sequence holds nothing back
      EXPECT_EQ(IncompleteUtf8Suffix(s), want) << "prefix '" << prefix << "' + " << k << " bytes";
    }
  }
  // Complete multi-byte characters and ASCII hold nothing back.
  EXPECT_EQ(IncompleteUtf8Suffix(""), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xC3\xA9"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xE2\x82\xAC"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xE2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xC3"), 1u);
}

}  // namespace
}  // namespace pocketlm
