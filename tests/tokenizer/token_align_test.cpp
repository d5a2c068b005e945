// AlignTokens on hand-checked cases, one per way a token's piece differs from the bytes it stands for (the random
// inputs of token_align_property_test.cpp find these too, but without saying which span is right).
#include "tokenizer/token_align.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "align_test_vocabs.h"
#include "vocab_builder.h"

namespace pocketlm {
namespace {

using testing::ByteSpm;

std::vector<TokenSpan> Spans(const Tokenizer& tok, const std::string& text, std::vector<int32_t>* ids_out = nullptr) {
  auto ids = tok.Encode(text, /*add_special=*/false, /*parse_special=*/false);
  EXPECT_TRUE(ids.ok());
  if (!ids.ok()) return {};
  if (ids_out != nullptr) *ids_out = *ids;
  auto spans = AlignTokens(tok, text, *ids);
  EXPECT_TRUE(spans.ok()) << spans.status().message();
  return spans.ok() ? *spans : std::vector<TokenSpan>{};
}

// Without a "▁" piece, byte fallback spells each "▁" as <0xE2><0x96><0x81>: the three tokens together stand for
// the space (or, for the space prefix, for no byte). This is the llama-kq vocabulary's case.
TEST(AlignTokensTest, ByteFallbackSpaceMarkerIsOneUnit) {
  auto tok = ByteSpm(/*space_piece=*/false, /*space_prefix=*/true);
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "a b", &ids);
  ASSERT_EQ(ids.size(), 8u);  // ▁ a ▁ b, the ▁s in three bytes each
  EXPECT_EQ(spans, (std::vector<TokenSpan>{{0, 0}, {0, 0}, {0, 0}, {0, 1}, {1, 2}, {1, 2}, {1, 2}, {2, 3}}));
}

// A "▁" in the text is three bytes of the text, though its token's piece reads " ".
TEST(AlignTokensTest, SpaceMarkerInTheTextIsText) {
  auto tok = ByteSpm(/*space_piece=*/true, /*space_prefix=*/false);
  ASSERT_TRUE(tok);
  const int32_t marker = *tok->FindToken("\xE2\x96\x81");
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "\xE2\x96\x81 x", &ids);
  ASSERT_EQ(ids, (std::vector<int32_t>{marker, marker, *tok->FindToken("<0x78>")}));
  EXPECT_EQ(spans, (std::vector<TokenSpan>{{0, 3}, {3, 4}, {4, 5}}));
}

// Byte tokens of a multi-byte character each stand for their byte; a user-defined token splits the text and the
// space prefix comes back after it.
TEST(AlignTokensTest, ByteTokensAndUserDefinedTokens) {
  auto tok = ByteSpm(/*space_piece=*/true, /*space_prefix=*/true);
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "\xE2\x82\xAC<ud>x", &ids);  // €<ud>x
  ASSERT_EQ(ids.size(), 7u);                                                    // ▁ E2 82 AC <ud> ▁ x
  EXPECT_EQ(ids[4], *tok->FindToken("<ud>"));
  EXPECT_EQ(spans, (std::vector<TokenSpan>{{0, 0}, {0, 1}, {1, 2}, {2, 3}, {3, 7}, {7, 7}, {7, 8}}));
}

// lstrip: "<mask>" swallows the spaces before it (jina-v2-code vocabularies), and covers them.
TEST(AlignTokensTest, LstripTokenCoversTheWhitespaceItSwallows) {
  auto tok = testing::LstripBpe();
  ASSERT_TRUE(tok);
  ASSERT_TRUE(tok->TokenAttributes(*tok->FindToken("<mask>")) & kAttrLstrip);
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "a  <mask>b", &ids);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(spans, (std::vector<TokenSpan>{{0, 1}, {1, 9}, {9, 10}}));
}

// "õ" is a user-defined token and also the byte symbol of 0xF5: split out of the text where the text holds "õ",
// and the merge result for a lone byte 0xF5 (invalid UTF-8), which stands for that one byte.
TEST(AlignTokensTest, UserDefinedTokenThatIsAlsoAByteSymbol) {
  auto tok = testing::LstripBpe();
  ASSERT_TRUE(tok);
  const int32_t o = *tok->FindToken("\xC3\xB5");
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "\xF5x\xC3\xB5", &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{o, 'x', o}));
  EXPECT_EQ(spans, (std::vector<TokenSpan>{{0, 1}, {1, 2}, {2, 4}}));
}

// A byte-level vocabulary that lacks a byte's symbol drops the byte (as llama.cpp does); the byte goes to the
// token before it, or to the first token.
TEST(AlignTokensTest, DroppedBytesGoToANeighbour) {
  auto tok = testing::Load(testing::TinyBpe());  // a b c ab abc Ġ Ġa
  ASSERT_TRUE(tok.ok());
  std::vector<int32_t> ids;
  EXPECT_EQ(Spans(**tok, "xab", &ids), (std::vector<TokenSpan>{{0, 3}}));
  EXPECT_EQ(ids, (std::vector<int32_t>{*(*tok)->FindToken("ab")}));
  EXPECT_EQ(Spans(**tok, "abxc", &ids), (std::vector<TokenSpan>{{0, 3}, {3, 4}}));
  EXPECT_TRUE(Spans(**tok, "xyz", &ids).empty());  // nothing to align
  EXPECT_TRUE(ids.empty());
}

// An NFC vocabulary encodes "é" for "e\u0301": no token boundary inside the stretch maps back, so it is one unit.
TEST(AlignTokensTest, NonNfcStretchIsOneUnit) {
  GgufWriter w = testing::ByteBpeVocab({"<|endoftext|>"}, /*add_bos=*/false);
  w.SetString("tokenizer.ggml.pre", "qwen2");
  auto tok = testing::LoadWriter(w);
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids;
  const std::vector<TokenSpan> spans = Spans(*tok, "e\xCC\x81x", &ids);
  ASSERT_EQ(ids.size(), 3u);  // C3 A9 x, one token per byte
  EXPECT_EQ(spans, std::vector<TokenSpan>(3, TokenSpan{0, 4}));
}

TEST(AlignTokensTest, TokensOfAnotherTextAreAnError) {
  auto tok = ByteSpm(/*space_piece=*/true, /*space_prefix=*/true);
  ASSERT_TRUE(tok);
  auto ids = tok->Encode("ab", false, false);
  ASSERT_TRUE(ids.ok());
  for (const char* other : {"abc", "a", "ba", ""}) {
    auto spans = AlignTokens(*tok, other, *ids);
    ASSERT_FALSE(spans.ok()) << other;
    EXPECT_EQ(spans.status().code(), ErrorCode::kUnsupported);
  }
  EXPECT_FALSE(AlignTokens(*tok, "ab", std::vector<int32_t>{-1, 99999}).ok());
}

}  // namespace
}  // namespace pocketlm
