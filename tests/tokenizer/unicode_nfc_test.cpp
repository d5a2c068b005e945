// NFC (tokenizer/unicode_nfc.h): the Unicode conformance file NormalizationTest.txt (Debian unicode-data ships it
// bzip2-compressed; read through `bzip2 -dc`), invalid UTF-8, and NFC in byte-level BPE encoding for qwen2 vocabs.
#include "tokenizer/unicode_nfc.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "vocab_builder.h"

namespace pocketlm {
namespace {

constexpr const char* kUcdDir = "/usr/share/unicode";

std::string Utf8(const std::vector<uint32_t>& cps) {
  std::string s;
  for (uint32_t cp : cps) AppendUtf8(cp, &s);
  return s;
}

// The conformance file as text; "" with *why set when it cannot be read.
std::string ReadNormalizationTest(std::string* why) {
  namespace fs = std::filesystem;
  const fs::path plain = fs::path(kUcdDir) / "NormalizationTest.txt";
  const fs::path bz2 = fs::path(kUcdDir) / "NormalizationTest.txt.bz2";
  std::string command;
  FILE* f = nullptr;
  if (fs::exists(plain)) {
    f = std::fopen(plain.c_str(), "rb");
  } else if (fs::exists(bz2)) {
    command = "bzip2 -dc '" + bz2.string() + "' 2>/dev/null";
    f = popen(command.c_str(), "r");
  } else {
    *why = "neither " + plain.string() + " nor " + bz2.string() + " exists (Debian package unicode-data)";
    return "";
  }
  if (f == nullptr) {
    *why = "cannot open " + (command.empty() ? plain.string() : command);
    return "";
  }
  std::string text;
  char chunk[1 << 16];
  for (size_t n; (n = std::fread(chunk, 1, sizeof(chunk), f)) > 0;) text.append(chunk, n);
  const int rc = command.empty() ? std::fclose(f) : pclose(f);
  if (rc != 0 || text.empty()) {
    *why = command.empty() ? "cannot read " + plain.string() : "'" + command + "' failed (is bzip2 installed?)";
    return "";
  }
  return text;
}

struct TestLine {
  int line_no;
  int part;
  std::string c[5];  // source; NFC; NFD; NFKC; NFKD (UTF-8)
};

std::vector<TestLine> ParseNormalizationTest(const std::string& text) {
  std::vector<TestLine> lines;
  int part = -1, line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.rfind("@Part", 0) == 0) {
      part = std::atoi(line.c_str() + 5);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    TestLine t{line_no, part, {}};
    size_t field = 0, start = 0;
    for (; field < 5; ++field) {
      const size_t semi = line.find(';', start);
      if (semi == std::string::npos) break;
      std::vector<uint32_t> cps;
      const std::string col = line.substr(start, semi - start);
      for (size_t i = 0; i < col.size();) {
        size_t used = 0;
        cps.push_back(static_cast<uint32_t>(std::stoul(col.substr(i), &used, 16)));
        i += used;
        while (i < col.size() && col[i] == ' ') ++i;
      }
      t.c[field] = Utf8(cps);
      start = semi + 1;
    }
    if (field == 5) lines.push_back(std::move(t));
  }
  return lines;
}

TEST(UnicodeNfcTest, NormalizationTestConformance) {
  std::string why;
  const std::string text = ReadNormalizationTest(&why);
  if (text.empty()) GTEST_SKIP() << "SKIPPED: " << why;
  const std::vector<TestLine> lines = ParseNormalizationTest(text);
  ASSERT_GT(lines.size(), 18000u);  // Unicode 15: 19,000-odd lines in parts 0-3
  int failures = 0;
  std::unordered_set<uint32_t> part1;
  for (const TestLine& t : lines) {
    // NFC invariants: c2 == toNFC(c1) == toNFC(c2) == toNFC(c3); c4 == toNFC(c4) == toNFC(c5).
    const std::pair<int, int> checks[] = {{1, 0}, {1, 1}, {1, 2}, {3, 3}, {3, 4}};
    for (const auto& [want, from] : checks) {
      const std::string got = ToNfc(t.c[from]);
      if (got != t.c[want] && ++failures <= 20) {
        ADD_FAILURE() << "NormalizationTest.txt line " << t.line_no << ": toNFC(c" << from + 1 << ") != c" << want + 1;
      }
      std::string out;
      if (NormalizeNfc(t.c[from], &out) != (t.c[want] != t.c[from]) && ++failures <= 20) {
        ADD_FAILURE() << "NormalizationTest.txt line " << t.line_no << ": NormalizeNfc(c" << from + 1
                      << ") reports the wrong change";
      }
    }
    if (t.part == 1) {
      size_t pos = 0;
      uint32_t cp = 0;
      ASSERT_TRUE(DecodeUtf8(t.c[0], &pos, &cp));
      part1.insert(cp);
    }
  }
  EXPECT_EQ(failures, 0);
  std::printf("[          ] %zu NormalizationTest.txt lines checked (%zu code points in part 1)\n", lines.size(),
              part1.size());

  // Part 1's rule: every code point it does not list is unchanged by NFC (all of them, not only assigned ones).
  int unchanged_failures = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || part1.count(cp) != 0) continue;
    const std::string s = Utf8({cp});
    std::string out;
    if (NormalizeNfc(s, &out) && ++unchanged_failures <= 20) {
      ADD_FAILURE() << "U+" << std::hex << cp << " is not in part 1 but NFC changes it";
    }
  }
  EXPECT_EQ(unchanged_failures, 0);
}

TEST(UnicodeNfcTest, ComposesDecomposesAndReorders) {
  EXPECT_EQ(ToNfc("Cafe\u0301"), "Caf\u00e9");
  EXPECT_EQ(ToNfc("A\u030A"), "\u00C5");
  EXPECT_EQ(ToNfc("\u212B"), "\u00C5");                                // singleton (ANGSTROM SIGN) -> Å
  EXPECT_EQ(ToNfc("\u1100\u1161\u11A8"), "\uAC01");                    // L V T jamo -> one syllable
  EXPECT_EQ(ToNfc("\uAC00\u11A8"), "\uAC01");                          // LV + T
  EXPECT_EQ(ToNfc("\u1100\u1161\u0301\u11A8"), "\uAC00\u0301\u11A8");  // a mark blocks the T
  EXPECT_EQ(ToNfc("q\u0307\u0323"), "q\u0323\u0307");                  // reordered, nothing composes
  EXPECT_EQ(ToNfc("\u1E0A\u0323"), "\u1E0C\u0307");                    // decomposed, reordered, recomposed
  EXPECT_EQ(ToNfc("\u0344"), "\u0308\u0301");                          // non-starter decomposition
  EXPECT_EQ(ToNfc("\u0958"), "\u0915\u093C");                          // composition exclusion
  EXPECT_EQ(ToNfc("\u0301abc"), "\u0301abc");                          // leading mark: nothing to compose with
  EXPECT_EQ(ToNfc(""), "");
  std::string out = "untouched";
  EXPECT_FALSE(NormalizeNfc("plain ASCII text, long enough for the 8-byte loop", &out));
  EXPECT_FALSE(NormalizeNfc("\u00e9t\u00e9 \u65e5\u672c\u8a9e \uAC01 q\u0323\u0307", &out));  // NFC already
  EXPECT_EQ(out, "untouched");
  EXPECT_TRUE(NormalizeNfc("x e\u0301 y", &out));
  EXPECT_EQ(out, "x \u00e9 y");
}

TEST(UnicodeNfcTest, InvalidUtf8PassesThrough) {
  EXPECT_EQ(ToNfc("\xFF"), "\xFF");
  EXPECT_EQ(ToNfc("e\xCC"), "e\xCC");                            // truncated U+0301
  EXPECT_EQ(ToNfc("\xED\xA0\x80\u0301"), "\xED\xA0\x80\u0301");  // a surrogate's bytes; the mark stays apart
  // An invalid byte is a barrier: the mark after it does not reach the "e" before it, the one before does.
  EXPECT_EQ(ToNfc("e\xFF\u0301"), "e\xFF\u0301");
  EXPECT_EQ(ToNfc("e\u0301\xFF"), "\u00e9\xFF");
  EXPECT_EQ(ToNfc("\xC0\xAF"), "\xC0\xAF");  // overlong

  // Random byte strings biased towards lead bytes, marks and jamo: never crashes (run under ASan in the sanitizer
  // build), keeps every invalid byte, and is idempotent.
  std::mt19937 rng(1234);
  const std::string pieces[] = {
      "e",    "\xCC", "\x81", "\xCC\x81", "\xCC\xA3", "\xE1\x84\x80", "\xE1\x85\xA1", "\xE1\x86\xA8", "\xEA\xB0\x80",
      "\xFF", "\xF0", "\x9F", " ",        "\xC3\xA9", "\xCD\x84"};
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += pieces[rng() % std::size(pieces)];
    const std::string once = ToNfc(s);
    ASSERT_EQ(ToNfc(once), once) << "not idempotent";
    ASSERT_EQ(IsValidUtf8(once), IsValidUtf8(s));
    std::string out;
    ASSERT_EQ(NormalizeNfc(s, &out), once != s);
  }
}

TEST(UnicodeNfcTest, LongRunOfMarksIsNotQuadratic) {
  // 200k marks in descending class order after one base letter: a bubble sort would take minutes.
  std::string s = "a";
  for (int i = 0; i < 100000; ++i) s += "\u0301\u0316";  // ccc 230, 220
  const std::string nfc = ToNfc(s);
  EXPECT_EQ(nfc.substr(0, 2), "\u00E1");  // á: the first acute composes (the 220s sort before it but do not block)
  EXPECT_EQ(nfc.size(), s.size() - 1);    // a + U+0301 (3 bytes) -> U+00E1 (2 bytes); the rest stays
}

std::string ByteEncoded(std::string_view bytes) {
  std::string s;
  AppendByteEncoded(bytes, &s);
  return s;
}

// Byte-level BPE: e, [C3], [A9], é = [C3][A9], [CC], [81], and the user-defined token "<e" U+0301 ">" (not NFC).
GgufWriter AccentBpe(const char* pre) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", pre);
  w.SetStringArray("tokenizer.ggml.tokens", {"e", ByteEncoded("\xC3"), ByteEncoded("\xA9"), ByteEncoded("\xC3\xA9"),
                                             ByteEncoded("\xCC"), ByteEncoded("\x81"), "<e\u0301>"});
  w.SetStringArray("tokenizer.ggml.merges", {ByteEncoded("\xC3") + " " + ByteEncoded("\xA9")});
  w.SetI32Array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 4});
  return w;
}

std::vector<int32_t> Enc(const Tokenizer& t, std::string_view s) {
  auto r = t.Encode(s, /*add_special=*/false, /*parse_special=*/true);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::vector<int32_t>{};
}

TEST(UnicodeNfcTest, Qwen2VocabEncodesNfc) {
  auto t = testing::Load(AccentBpe("qwen2"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  const std::vector<int32_t> e_acute = {3};
  EXPECT_EQ(Enc(**t, "\u00e9"), e_acute);
  EXPECT_EQ(Enc(**t, "e\u0301"), e_acute);  // NFC first, as Hugging Face's Qwen2 normalizer
  EXPECT_EQ((*t)->Decode(Enc(**t, "e\u0301")), "\u00e9");
  // Special-token texts are matched in the raw text; only the text between them is normalized.
  EXPECT_EQ(Enc(**t, "<e\u0301>"), (std::vector<int32_t>{6}));
  EXPECT_EQ(Enc(**t, "e\u0301<e\u0301>e\u0301"), (std::vector<int32_t>{3, 6, 3}));
}

TEST(UnicodeNfcTest, OtherByteLevelVocabsDoNotNormalize) {
  auto t = testing::Load(AccentBpe("gpt-2"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(Enc(**t, "\u00e9"), (std::vector<int32_t>{3}));
  EXPECT_EQ(Enc(**t, "e\u0301"), (std::vector<int32_t>{0, 4, 5}));  // e, then U+0301's two bytes
  EXPECT_EQ((*t)->Decode(Enc(**t, "e\u0301")), "e\u0301");
}

}  // namespace
}  // namespace pocketlm
