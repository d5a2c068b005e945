// Property test for AlignTokens and TokenizeChat on seeded random Unicode text (every plane, combining marks,
// emoji ZWJ sequences, whitespace runs with tabs, newlines, NBSP and the ideographic space, U+2581 "▁" itself,
// the vocabulary's own pieces and special-token texts; valid UTF-8 only, fuzz/fuzz_chat_align.cpp covers the
// rest). For every golden vocabulary (tokenizers/*.gguf and the llama-kq model's, one test each so a failure
// names it) and small built ones that reach what the golden ones do not (<unk> fallback, bytes a vocabulary
// drops, lstrip, NFC, no space prefix):
//   - whenever Encode succeeds, AlignTokens does, and its spans tile the text in order;
//   - each unit of tokens spells the bytes it claims (its pieces, with Encode's "▁" and space prefix undone);
//   - TokenizeChat succeeds on conversations rendered by every template (markers the vocabulary lacks as text,
//     content split into several segments) unless it refuses message text on purpose, and gives the tokens of
//     the whole rendered string.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "align_test_vocabs.h"
#include "base/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/token_align.h"
#include "tokenizer/unicode_nfc.h"
#include "vocab_builder.h"

namespace pocketlm {
namespace {

namespace fs = std::filesystem;

// Discovery runs without the test environment, so the golden directory is also compiled in for listing the
// per-file tests; at run time PLM_GOLDEN_DIR wins.
std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : PLM_DEFAULT_GOLDEN_DIR;
}

constexpr const char* kLlamaKq = "models/llama-kq-Q4_K_M.gguf";

// Built vocabularies by name; nullptr for an unknown name.
std::unique_ptr<Tokenizer> BuiltVocab(const std::string& name) {
  auto load = [](const GgufWriter& w) {
    auto t = testing::Load(w);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? std::move(t).value() : nullptr;
  };
  if (name == "tiny-spm") return load(testing::TinySpm());                          // <unk> for most bytes
  if (name == "tiny-bpe") return load(testing::TinyBpe());                          // drops most bytes
  if (name == "gemma-like") return testing::LoadWriter(testing::GemmaLikeVocab());  // no space prefix
  if (name == "lstrip-bpe") return testing::LstripBpe();
  if (name == "byte-spm") return testing::ByteSpm(/*space_piece=*/false, /*space_prefix=*/true);
  if (name == "nfc-bpe") {
    GgufWriter w = testing::ByteBpeVocab({"<|endoftext|>", "<|im_end|>", "<|im_start|>"}, /*add_bos=*/false);
    w.SetString("tokenizer.ggml.pre", "qwen2");
    return testing::LoadWriter(w);
  }
  return nullptr;
}

std::vector<std::string> VocabNames() {
  std::vector<std::string> out = {
      "built/tiny-spm", "built/tiny-bpe", "built/gemma-like", "built/lstrip-bpe", "built/byte-spm",
      "built/nfc-bpe",  kLlamaKq};
  std::vector<std::string> golden;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(GoldenDir()) / "tokenizers", ec)) {
    if (e.path().extension() == ".gguf") golden.push_back("tokenizers/" + e.path().filename().string());
  }
  std::sort(golden.begin(), golden.end());
  out.insert(out.end(), golden.begin(), golden.end());
  return out;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (const char* drop : {"tokenizers/ggml-vocab-", "models/", ".gguf"}) {
    if (size_t p = name.find(drop); p != std::string::npos) name.erase(p, std::string(drop).size());
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

std::string Escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && c != '\\') {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", u);
      out += buf;
    }
  }
  return out;
}

bool IsSpecial(uint32_t attr) {
  return (attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) != 0;
}

// Seeded random valid UTF-8 text.
class TextGen {
 public:
  TextGen(const Tokenizer& tok, uint32_t seed) : rng_(seed) {
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
      if (IsSpecial(tok.TokenAttributes(id))) specials_.push_back(tok.TokenText(id));
    }
    for (int i = 0; i < 400 && tok.n_vocab() > 0; ++i) {
      const auto id = static_cast<int32_t>(rng_() % static_cast<uint32_t>(tok.n_vocab()));
      if (!(tok.TokenAttributes(id) & kAttrNormal)) continue;
      std::string piece = tok.TokenToPiece(id);
      if (!piece.empty() && IsValidUtf8(piece)) pieces_.push_back(std::move(piece));
    }
  }

  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  uint32_t In(uint32_t lo, uint32_t hi) { return lo + Below(hi - lo + 1); }

  std::string Text(uint32_t max_pieces) {
    std::string s;
    const uint32_t n = Below(max_pieces + 1);
    for (uint32_t i = 0; i < n; ++i) AppendPiece(&s);
    return s;
  }

 private:
  void Cp(uint32_t cp, std::string* s) { AppendUtf8(cp, s); }

  // Any scalar value of the range (surrogates are not scalar values).
  void Scalar(uint32_t lo, uint32_t hi, std::string* s) {
    uint32_t cp = In(lo, hi);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    Cp(cp, s);
  }

  void AppendPiece(std::string* s) {
    static const uint32_t kSpaces[] = {' ', ' ', ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x3000, 0x2003, 0x2028};
    static const uint32_t kEmoji[][2] = {
        {0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}};
    static const uint32_t kMarks[][2] = {{0x300, 0x36F},   {0x483, 0x489},   {0x591, 0x5BD},   {0x93C, 0x94D},
                                         {0x1AB0, 0x1ACE}, {0x20D0, 0x20F0}, {0xFE20, 0xFE2F}, {0x1D165, 0x1D169}};
    static const uint32_t kScripts[][2] = {{0xC0, 0xFF},     {0x100, 0x24F},   {0x370, 0x3FF},   {0x400, 0x4FF},
                                           {0x600, 0x6FF},   {0x900, 0x97F},   {0xE00, 0xE7F},   {0x4E00, 0x9FFF},
                                           {0xAC00, 0xD7A3}, {0x3040, 0x30FF}, {0x1100, 0x11FF}, {0x10330, 0x1034A}};
    static const char* kFixed[] = {"\xE2\x82\xAC",  // €
                                   "Price in \xE2\x82\xAC please",
                                   "e\xCC\x81",
                                   "\xC3\xA9",
                                   "A\xCC\x8A",
                                   "\xE2\x84\xAB",              // Angstrom sign, NFC Å
                                   "\xEA\xB0\x80\xE1\x86\xA8",  // 가 + jongseong: NFC 각
                                   "1\xEF\xB8\x8F\xE2\x83\xA3",
                                   " 123 ",
                                   "<",
                                   "|>",
                                   "'s",
                                   "\r\n"};
    switch (Below(24)) {
      case 0:
      case 1:
      case 2: {  // ASCII word
        const uint32_t n = In(1, 7);
        for (uint32_t i = 0; i < n; ++i)
          s->push_back("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[Below(62)]);
        break;
      }
      case 3:  // ASCII punctuation and symbols
        s->push_back("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[Below(32)]);
        break;
      case 4:
      case 5:
      case 6: {  // whitespace run
        const uint32_t n = In(1, 5);
        for (uint32_t i = 0; i < n; ++i) Cp(kSpaces[Below(std::size(kSpaces))], s);
        break;
      }
      case 7: {  // U+2581 itself, alone or in a run, maybe before a letter
        const uint32_t n = In(1, 3);
        for (uint32_t i = 0; i < n; ++i) Cp(0x2581, s);
        if (Below(2)) s->push_back('x');
        break;
      }
      case 8: {  // combining marks, after a letter or not
        if (Below(3)) s->push_back('a' + static_cast<char>(Below(26)));
        const uint32_t n = In(1, 3);
        for (uint32_t i = 0; i < n; ++i) {
          const auto& r = kMarks[Below(std::size(kMarks))];
          Scalar(r[0], r[1], s);
        }
        break;
      }
      case 9: {  // emoji ZWJ sequence, with variation selectors and skin tones
        const uint32_t n = In(1, 4);
        for (uint32_t i = 0; i < n; ++i) {
          if (i > 0) Cp(0x200D, s);
          const auto& r = kEmoji[Below(std::size(kEmoji))];
          Scalar(r[0], r[1], s);
          if (Below(3) == 0) Cp(0xFE0F, s);
          if (Below(4) == 0) Scalar(0x1F3FB, 0x1F3FF, s);
        }
        break;
      }
      case 10:  // flag: two regional indicators
        Scalar(0x1F1E6, 0x1F1FF, s);
        Scalar(0x1F1E6, 0x1F1FF, s);
        break;
      case 11:
      case 12: {  // letters of other scripts (incl. Hangul jamo, Gothic in plane 1)
        const auto& r = kScripts[Below(std::size(kScripts))];
        const uint32_t n = In(1, 4);
        for (uint32_t i = 0; i < n; ++i) Scalar(r[0], r[1], s);
        break;
      }
      case 13:  // any BMP scalar, controls and NUL included
        Scalar(0, 0xFFFF, s);
        break;
      case 14:  // any supplementary-plane scalar (planes 1-16)
        Scalar(0x10000, 0x10FFFF, s);
        break;
      case 15:
      case 16:
      case 17:
      case 18:  // the vocabulary's own pieces, so that long merges happen
        if (!pieces_.empty()) *s += pieces_[Below(static_cast<uint32_t>(pieces_.size()))];
        break;
      case 19:  // a special token's text
        if (!specials_.empty()) *s += specials_[Below(static_cast<uint32_t>(specials_.size()))];
        break;
      default: *s += kFixed[Below(std::size(kFixed))]; break;
    }
  }

  std::mt19937 rng_;
  std::vector<std::string> specials_;
  std::vector<std::string> pieces_;
};

std::string ReplaceSpaceMarker(std::string s) {
  for (size_t p; (p = s.find("\xE2\x96\x81")) != std::string::npos;) s.replace(p, 3, " ");
  return s;
}

// Each unit (tokens sharing a span) spells its bytes: the concatenated pieces equal the span's text, up to the
// encoder's own changes: SentencePiece's "▁" for " " (the text's own "▁" also reads as " ") and the space prefix
// at the start of the text and after a user-defined token; byte-level BPE leaves out bytes whose symbol is not a
// token (several golden vocabularies lack some, e.g. of 0xF1); a user-defined token's span may hold whitespace
// it swallowed. Units with <unk> or control tokens (no piece) are not checked.
void ExpectUnitsSpellTheirBytes(const Tokenizer& tok, std::string_view text, const std::vector<int32_t>& ids,
                                const std::vector<TokenSpan>& spans) {
  const bool spm = tok.type() == VocabType::kSpm;
  bool fragment_start = true;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i + 1;
    while (j < ids.size() && spans[j] == spans[i]) ++j;
    const std::string_view bytes = text.substr(spans[i].begin, spans[i].end - spans[i].begin);
    const uint32_t attr = tok.TokenAttributes(ids[i]);
    if (j == i + 1 && (attr & kAttrUserDefined)) {
      const std::string& t = tok.TokenText(ids[i]);
      const size_t at = bytes.find(t);
      ASSERT_NE(at, std::string_view::npos) << "token " << i;
      for (size_t k = 0; k < bytes.size(); ++k) {
        if (k < at || k >= at + t.size()) {
          EXPECT_TRUE(std::isspace(static_cast<unsigned char>(bytes[k]))) << i;
        }
      }
      fragment_start = true;
      i = j;
      continue;
    }
    std::string got;
    bool checkable = true;
    for (size_t k = i; k < j; ++k) {
      if (tok.TokenAttributes(ids[k]) & (kAttrUnknown | kAttrControl)) checkable = false;
      got += tok.TokenToPiece(ids[k]);
    }
    if (checkable) {
      std::string want(bytes);
      if (spm) {
        got = ReplaceSpaceMarker(got);
        want = ReplaceSpaceMarker(want);
      } else {
        std::erase_if(want, [&](char c) {
          std::string symbol;
          AppendByteEncoded(std::string_view(&c, 1), &symbol);
          return !tok.FindToken(symbol);
        });
      }
      const bool prefixed = spm && tok.add_space_prefix() && fragment_start && got == " " + want;
      EXPECT_TRUE(got == want || prefixed)
          << "tokens " << i << ".." << j - 1 << " spell '" << Escaped(got) << "' for bytes [" << spans[i].begin << ", "
          << spans[i].end << ") '" << Escaped(want) << "'";
    }
    fragment_start = false;
    i = j;
  }
}

struct Stats {
  int texts = 0, conversations = 0, refused = 0, compared = 0;
};

// FNV-1a, so the seed of a vocabulary's run is the same on every platform.
uint32_t Seed(std::string_view name) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

void CheckPlain(const Tokenizer& tok, const std::string& text) {
  SCOPED_TRACE("text '" + Escaped(text) + "'");
  auto ids = tok.Encode(text, /*add_special=*/false, /*parse_special=*/false);
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  auto spans = AlignTokens(tok, text, *ids);
  ASSERT_TRUE(spans.ok()) << spans.status().message();
  ASSERT_EQ(spans->size(), ids->size());
  if (ids->empty()) return;  // only a vocabulary that drops bytes encodes text to nothing
  EXPECT_EQ(spans->front().begin, 0u);
  EXPECT_EQ(spans->back().end, text.size());
  for (size_t i = 0; i < spans->size(); ++i) {
    const TokenSpan& s = (*spans)[i];
    ASSERT_LE(s.begin, s.end) << i;
    if (i > 0) {
      ASSERT_TRUE(s == (*spans)[i - 1] || s.begin == (*spans)[i - 1].end) << "token " << i << " not contiguous";
    }
  }
  std::string normalized;
  if (!(tok.normalizes_nfc() && NormalizeNfc(text, &normalized))) {
    ExpectUnitsSpellTheirBytes(tok, text, *ids, *spans);
  }
}

bool HasMarker(const Tokenizer& tok, const std::string& text) {
  const std::optional<int32_t> id = tok.FindToken(text);
  return id && IsSpecial(tok.TokenAttributes(*id));
}

// `controls`: the texts of the vocabulary's control and unknown tokens.
void CheckChat(const Tokenizer& tok, const std::vector<std::string>& controls, TextGen& gen, ChatTemplateKind kind,
               Stats* stats) {
  std::vector<ChatMessage> conv;
  if (gen.Below(2)) conv.push_back({ChatRole::kSystem, gen.Text(4)});
  const uint32_t turns = gen.In(1, 3);
  for (uint32_t t = 0; t < turns; ++t) {
    conv.push_back({ChatRole::kUser, gen.Text(6)});
    if (t + 1 < turns || gen.Below(2)) conv.push_back({ChatRole::kAssistant, gen.Text(6), gen.Below(4) != 0});
  }
  auto rendered = RenderChat(kind, conv, /*add_generation_prompt=*/gen.Below(2) == 0);
  ASSERT_TRUE(rendered.ok()) << rendered.status().message();
  // Markers the vocabulary lacks become text (RenderAndTokenizeChat's markers-as-text mode); content segments
  // are cut in two at a random character boundary, with different loss flags, so tokens straddle segments.
  std::vector<ChatSegment> segs;
  for (ChatSegment s : *rendered) {
    if (s.kind == ChatSegment::kSpecialToken && !HasMarker(tok, s.text)) s.kind = ChatSegment::kTemplateText;
    size_t cut =
        s.kind == ChatSegment::kContent && !s.text.empty() ? gen.Below(static_cast<uint32_t>(s.text.size())) : 0;
    while (cut > 0 && (static_cast<uint8_t>(s.text[cut]) & 0xC0) == 0x80) --cut;
    if (cut > 0) {
      segs.push_back({s.kind, s.text.substr(0, cut), !s.trainable});
      s.text.erase(0, cut);
    }
    segs.push_back(std::move(s));
  }
  const std::string joined = JoinSegments(segs);
  SCOPED_TRACE("template " + std::string(ChatTemplateName(kind)) + ", text '" + Escaped(joined) + "'");
  auto chat = TokenizeChat(tok, segs);
  ++stats->conversations;
  if (!chat.ok()) {
    // Refusals on purpose: message text that is a conversation-control user-defined token, and (NFC vocabularies)
    // a segment starting with a mark that composes with the text before it.
    const std::string& m = chat.status().message();
    const bool injection = m.find("always reads as a special token") != std::string::npos;
    const bool composes = tok.normalizes_nfc() && m.find("combining mark") != std::string::npos;
    ASSERT_TRUE(chat.status().code() == ErrorCode::kInvalidArgument && (injection || composes)) << m;
    ++stats->refused;
    return;
  }
  ASSERT_EQ(chat->tokens.size(), chat->trainable.size());
  // Whole-string tokenization (llama.cpp's, with parse_special) gives the same ids unless a control token's text
  // occurs outside the special segments (TokenizeChat keeps such text as text, on purpose).
  std::string outside;
  for (const ChatSegment& s : segs) outside += s.kind == ChatSegment::kSpecialToken ? std::string("\x01") : s.text;
  for (const std::string& c : controls) {
    if (outside.find(c) != std::string::npos) return;
  }
  auto whole = tok.Encode(joined, /*add_special=*/false, /*parse_special=*/true);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  std::vector<int32_t> want;
  if (tok.add_bos()) want.push_back(tok.bos());
  want.insert(want.end(), whole->begin(), whole->end());
  EXPECT_EQ(chat->tokens, want);
  ++stats->compared;
}

class TokenAlignPropertyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenAlignPropertyTest, RandomTextAlignsAndChatsTokenize) {
  const std::string& name = GetParam();
  std::unique_ptr<Tokenizer> tok;
  if (name.rfind("built/", 0) == 0) {
    tok = BuiltVocab(name.substr(6));
    ASSERT_TRUE(tok) << name;
  } else {
    const std::string path = (fs::path(GoldenDir()) / name).string();
    auto f = GgufFile::Open(path);
    if (!f.ok()) GTEST_SKIP() << "'" << path << "' is absent (set PLM_GOLDEN_DIR)";
    auto t = Tokenizer::FromGguf(*f);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok = std::move(t).value();
  }
  std::vector<std::string> controls;
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    if (tok->TokenAttributes(id) & (kAttrControl | kAttrUnknown)) controls.push_back(tok->TokenText(id));
  }
  const uint32_t seed = Seed(name);
  SCOPED_TRACE("seed " + std::to_string(seed));
  TextGen gen(*tok, seed);
  Stats stats;
  // Sized for a few seconds for all vocabularies in a release build.
  for (int i = 0; i < 2000; ++i) {
    CheckPlain(*tok, gen.Text(12));
    ++stats.texts;
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (ChatTemplateKind kind : {ChatTemplateKind::kChatML, ChatTemplateKind::kLlama3, ChatTemplateKind::kLlama2,
                                ChatTemplateKind::kGemma, ChatTemplateKind::kPhi3}) {
    for (int i = 0; i < 250; ++i) {
      CheckChat(*tok, controls, gen, kind, &stats);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  // Most conversations must tokenize, and many be compared with the whole string, or the test would check little.
  EXPECT_LT(stats.refused * 4, stats.conversations);
  EXPECT_GT(stats.compared * 4, stats.conversations);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, TokenAlignPropertyTest, ::testing::ValuesIn(VocabNames()), TestName);

}  // namespace
}  // namespace pocketlm
