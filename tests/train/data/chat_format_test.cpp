// ChooseChatFormat, the one rule every front end uses to pick a chat template, and RenderAndTokenizeChat with
// markers the vocabulary lacks spelled as text (what llama-server does for a model without a template).
#include "tokenizer/chat_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "data_test_util.h"

namespace pocketlm {
namespace {

using testing::ByteBpeVocab;
using testing::LoadWriter;

const ChatMessage kUserHi[] = {{ChatRole::kUser, "hi", true}};

TEST(ChatFormatTest, NamedTemplateWins) {
  auto tok = LoadWriter(ByteBpeVocab({"<|endoftext|>", "<|im_end|>", "<|im_start|>"}, false));
  ASSERT_TRUE(tok);
  auto f = ChooseChatFormat(*tok, "{% for m in messages %}<|im_start|>...", "llama2", MissingMarkers::kRefuse);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->kind, ChatTemplateKind::kLlama2);
  EXPECT_FALSE(f->fell_back);
  EXPECT_NE(f->description.find("llama2"), std::string::npos);
  auto bad = ChooseChatFormat(*tok, std::nullopt, "mistral", MissingMarkers::kAsText);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("mistral"), std::string::npos);
}

TEST(ChatFormatTest, MetadataTemplateIsRecognized) {
  auto tok = LoadWriter(ByteBpeVocab({"<|endoftext|>", "<|im_end|>", "<|im_start|>"}, false));
  ASSERT_TRUE(tok);
  auto f = ChooseChatFormat(*tok, "{% for m in messages %}<|im_start|>{{ m.role }}", "", MissingMarkers::kAsText);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, ChatTemplateKind::kChatML);
  EXPECT_FALSE(f->fell_back);
  EXPECT_FALSE(f->markers_as_text);
  EXPECT_TRUE(f->end_of_turn_text.empty());
}

TEST(ChatFormatTest, NoOrUnknownTemplateFallsBackToChatML) {
  auto tok = LoadWriter(ByteBpeVocab({"<|endoftext|>", "<|im_end|>", "<|im_start|>"}, false));
  ASSERT_TRUE(tok);
  for (std::optional<std::string_view> jinja : {std::optional<std::string_view>(), std::optional<std::string_view>(""),
                                                std::optional<std::string_view>("{{ unheard of }}")}) {
    auto f = ChooseChatFormat(*tok, jinja, "", MissingMarkers::kRefuse);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->kind, ChatTemplateKind::kChatML);
    EXPECT_TRUE(f->fell_back);
    EXPECT_FALSE(f->markers_as_text);  // this vocabulary has ChatML's markers
    EXPECT_NE(f->description.find("name a"), std::string::npos) << f->description;
    auto tc = RenderAndTokenizeChat(*tok, f.value(), kUserHi, true);
    ASSERT_TRUE(tc.ok()) << tc.status().message();
    EXPECT_EQ(tc->tokens.front(), tok->FindToken("<|im_start|>").value());
  }
}

// A vocabulary without ChatML's markers (as llama-tiny and most SentencePiece base models): served with the
// markers as text, exactly the tokens of the rendered string tokenized without special tokens.
TEST(ChatFormatTest, MissingMarkersAreSpelledAsTextWhenAllowed) {
  auto tok = LoadWriter(ByteBpeVocab({"<|endoftext|>", "<|unused|>"}, false));
  ASSERT_TRUE(tok);
  auto f = ChooseChatFormat(*tok, std::nullopt, "", MissingMarkers::kAsText);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, ChatTemplateKind::kChatML);
  EXPECT_TRUE(f->markers_as_text);
  EXPECT_EQ(f->end_of_turn_text, "<|im_end|>");
  EXPECT_NE(f->description.find("<|im_start|> <|im_end|>"), std::string::npos) << f->description;
  auto tc = RenderAndTokenizeChat(*tok, f.value(), kUserHi, true);
  ASSERT_TRUE(tc.ok()) << tc.status().message();
  auto want = tok->Encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", false, false);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(tc->tokens, want.value());
}

TEST(ChatFormatTest, MissingMarkersAreRefusedForTraining) {
  auto tok = LoadWriter(ByteBpeVocab({"<|endoftext|>", "<|unused|>"}, false));
  ASSERT_TRUE(tok);
  auto f = ChooseChatFormat(*tok, std::nullopt, "", MissingMarkers::kRefuse);
  ASSERT_TRUE(f.ok());  // choosing never fails: only data that needs the markers does
  EXPECT_FALSE(f->markers_as_text);
  EXPECT_TRUE(f->end_of_turn_text.empty());
  EXPECT_NE(f->description.find("cannot be tokenized"), std::string::npos) << f->description;
  auto tc = RenderAndTokenizeChat(*tok, f.value(), kUserHi, true);
  ASSERT_FALSE(tc.ok());
  EXPECT_NE(tc.status().message().find("<|im_start|>"), std::string::npos) << tc.status().message();
}

// Only the markers the vocabulary lacks become text: llama2 on a vocabulary with BOS/EOS keeps </s> and <s> as
// the special tokens they are.
TEST(ChatFormatTest, PresentMarkersStayTokens) {
  auto tok = LoadWriter(ByteBpeVocab({"<s>", "</s>"}, true));
  ASSERT_TRUE(tok);
  auto f = ChooseChatFormat(*tok, std::nullopt, "llama2", MissingMarkers::kAsText);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->markers_as_text);
  const ChatMessage turns[] = {
      {ChatRole::kUser, "a", true}, {ChatRole::kAssistant, "b", true}, {ChatRole::kUser, "c", true}};
  auto tc = RenderAndTokenizeChat(*tok, f.value(), turns, true);
  ASSERT_TRUE(tc.ok()) << tc.status().message();
  const int32_t eos = tok->FindToken("</s>").value();
  EXPECT_NE(std::find(tc->tokens.begin(), tc->tokens.end(), eos), tc->tokens.end());
}

}  // namespace
}  // namespace pocketlm
