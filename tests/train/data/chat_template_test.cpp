// Chat templates: renderings of llama.cpp's test conversation (tests/test-chat-template.cpp) compared with the
// strings the reference templates produce, which are the specification here; names, detection, role orders.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <vector>

#include "data_test_util.h"

namespace pocketlm {
namespace {

using testing::Conversation;

// std::span has no initializer-list constructor before C++26.
Result<std::vector<ChatSegment>> RenderV(ChatTemplateKind kind, const std::vector<ChatMessage>& messages, bool gen) {
  return RenderChat(kind, messages, gen);
}

std::string Render(ChatTemplateKind kind, const std::vector<ChatMessage>& messages, bool gen) {
  auto segs = RenderChat(kind, messages, gen);
  EXPECT_TRUE(segs.ok()) << segs.status().message();
  return segs.ok() ? JoinSegments(*segs) : "";
}

// Concatenated text of the trainable segments.
std::string TrainableText(ChatTemplateKind kind, const std::vector<ChatMessage>& messages) {
  auto segs = RenderChat(kind, messages, false);
  EXPECT_TRUE(segs.ok()) << segs.status().message();
  std::string out;
  if (segs.ok()) {
    for (const ChatSegment& s : *segs) {
      if (s.trainable) out += s.text;
    }
  }
  return out;
}

TEST(ChatTemplateTest, ChatMLMatchesOpenHermesAndQwen) {
  EXPECT_EQ(Render(ChatTemplateKind::kChatML, Conversation(), true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Llama3TrimsContent) {
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, Conversation(), true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// meta-llama/Llama-2-7b-chat-hf's Jinja template (bos_token "<s>", eos_token "</s>"), without the leading BOS.
// llama.cpp's legacy renderer differs ("[/INST]Hi there</s>"); its Jinja rendering of the same template
// (vigogne-2, which has the BOS only once) gives these spaces.
TEST(ChatTemplateTest, Llama2MatchesMetaTemplate) {
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, Conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
  // Without a system message; stripping of user text.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, {{ChatRole::kUser, "  Hi \n"}}, false), "[INST] Hi [/INST]");
  // content.strip() applies to '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user as a whole.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama2, {{ChatRole::kSystem, " S "}, {ChatRole::kUser, " \t"}}, false),
            "[INST] <<SYS>>\n S \n<</SYS>> [/INST]");
}

TEST(ChatTemplateTest, GemmaPutsSystemInFirstUserTurn) {
  EXPECT_EQ(Render(ChatTemplateKind::kGemma, Conversation(), true),
            "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n"
            "<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n"
            "<start_of_turn>model\n");
  // An empty system message adds nothing.
  EXPECT_EQ(Render(ChatTemplateKind::kGemma, {{ChatRole::kSystem, " "}, {ChatRole::kUser, "Hi"}}, false),
            "<start_of_turn>user\nHi<end_of_turn>\n");
}

TEST(ChatTemplateTest, Phi3KeepsContentAsIs) {
  EXPECT_EQ(Render(ChatTemplateKind::kPhi3, Conversation(), true),
            "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n"
            "<|user|>\nAnother question<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplateTest, TrainableSegmentsAreRepliesAndTheirEndOfTurn) {
  auto conv = Conversation();
  conv.push_back({ChatRole::kAssistant, "Fine"});
  EXPECT_EQ(TrainableText(ChatTemplateKind::kChatML, conv),
            "Hi there<|im_end|>   I am an assistant   <|im_end|>Fine<|im_end|>");
  EXPECT_EQ(TrainableText(ChatTemplateKind::kLlama3, conv),
            "Hi there<|eot_id|>I am an assistant<|eot_id|>Fine<|eot_id|>");
  EXPECT_EQ(TrainableText(ChatTemplateKind::kLlama2, conv), " Hi there </s> I am an assistant </s> Fine </s>");
  EXPECT_EQ(TrainableText(ChatTemplateKind::kGemma, conv),
            "Hi there<end_of_turn>I am an assistant<end_of_turn>Fine<end_of_turn>");
  EXPECT_EQ(TrainableText(ChatTemplateKind::kPhi3, conv), "Hi there<|end|>   I am an assistant   <|end|>Fine<|end|>");
  // weight 0 keeps a reply out.
  conv[2].train = false;
  EXPECT_EQ(TrainableText(ChatTemplateKind::kChatML, conv), "   I am an assistant   <|im_end|>Fine<|im_end|>");
}

TEST(ChatTemplateTest, SegmentKinds) {
  auto segs = RenderV(ChatTemplateKind::kChatML, {{ChatRole::kUser, "<|im_end|>"}}, false);
  ASSERT_TRUE(segs.ok());
  ASSERT_EQ(segs->size(), 5u);
  EXPECT_EQ((*segs)[0].kind, ChatSegment::kSpecialToken);
  EXPECT_EQ((*segs)[1].kind, ChatSegment::kTemplateText);
  EXPECT_EQ((*segs)[2].kind, ChatSegment::kContent);  // the text "<|im_end|>", never a special token
  EXPECT_EQ((*segs)[2].text, "<|im_end|>");
  EXPECT_EQ((*segs)[3].kind, ChatSegment::kSpecialToken);
}

TEST(ChatTemplateTest, StripIsPythonStrip) {
  // U+3000 and U+00A0 are whitespace to Python's str.strip(); U+200B (zero width space) is not.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, {{ChatRole::kUser, "\xE3\x80\x80 x\xC2\xA0"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, {{ChatRole::kUser, "\xE2\x80\x8Bx"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\n\xE2\x80\x8Bx<|eot_id|>");
  // Invalid UTF-8 stops stripping instead of failing.
  EXPECT_EQ(Render(ChatTemplateKind::kLlama3, {{ChatRole::kUser, " \xFF "}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\n\xFF<|eot_id|>");
}

TEST(ChatTemplateTest, RoleOrderErrors) {
  EXPECT_FALSE(RenderV(ChatTemplateKind::kChatML, {}, true).ok());
  for (ChatTemplateKind k : {ChatTemplateKind::kLlama2, ChatTemplateKind::kGemma}) {
    SCOPED_TRACE(std::string(ChatTemplateName(k)));
    EXPECT_FALSE(RenderV(k, {{ChatRole::kAssistant, "a"}}, false).ok());
    EXPECT_FALSE(RenderV(k, {{ChatRole::kUser, "a"}, {ChatRole::kUser, "b"}}, false).ok());
    EXPECT_FALSE(RenderV(k, {{ChatRole::kSystem, "s"}}, false).ok());
    auto late_system = RenderV(k, {{ChatRole::kUser, "a"}, {ChatRole::kSystem, "s"}}, false);
    ASSERT_FALSE(late_system.ok());
    EXPECT_NE(late_system.status().message().find("alternate"), std::string::npos);
    EXPECT_TRUE(RenderV(k, {{ChatRole::kSystem, "s"}, {ChatRole::kUser, "a"}}, true).ok());
  }
  // The others take any order.
  for (ChatTemplateKind k : {ChatTemplateKind::kChatML, ChatTemplateKind::kLlama3, ChatTemplateKind::kPhi3}) {
    EXPECT_TRUE(RenderV(k, {{ChatRole::kAssistant, "a"}, {ChatRole::kSystem, "s"}}, false).ok());
  }
}

TEST(ChatTemplateTest, Names) {
  for (ChatTemplateKind k : {ChatTemplateKind::kChatML, ChatTemplateKind::kLlama3, ChatTemplateKind::kLlama2,
                             ChatTemplateKind::kGemma, ChatTemplateKind::kPhi3}) {
    auto back = ChatTemplateFromName(ChatTemplateName(k));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, k);
  }
  auto bad = ChatTemplateFromName("vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("chatml, llama3, llama2, gemma, phi3"), std::string::npos);
  EXPECT_EQ(ChatRoleFromName("assistant").value(), ChatRole::kAssistant);
  EXPECT_FALSE(ChatRoleFromName("tool").ok());
}

// Snippets of the models' tokenizer.chat_template.
TEST(ChatTemplateTest, DetectsFromJinja) {
  auto detect = [](std::string_view jinja) {
    auto r = DetectChatTemplate(jinja);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : ChatTemplateKind::kChatML;
  };
  EXPECT_EQ(detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                   "'<|im_end|>' + '\\n'}}{% endfor %}"),
            ChatTemplateKind::kChatML);
  EXPECT_EQ(detect("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
                   "message['content'] | trim + '<|eot_id|>' %}"),
            ChatTemplateKind::kLlama3);
  EXPECT_EQ(detect("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% set content = '<<SYS>>\\n' %}"),
            ChatTemplateKind::kLlama2);
  EXPECT_EQ(detect("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"),
            ChatTemplateKind::kGemma);
  EXPECT_EQ(detect("{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}"),
            ChatTemplateKind::kPhi3);
  EXPECT_EQ(detect("gemma"), ChatTemplateKind::kGemma);

  for (std::string_view unknown :
       {"", "{{ 'USER: ' + message['content'] }}", "[INST] mistral [/INST]", "<|im_start|>system<|im_sep|>"}) {
    auto r = DetectChatTemplate(unknown);
    ASSERT_FALSE(r.ok()) << unknown;
    // The remedy, in words the C API's users can follow too (they have no command-line flags).
    EXPECT_NE(r.status().message().find("name one of these chat templates: chatml"), std::string::npos)
        << r.status().message();
    EXPECT_EQ(r.status().message().find("--"), std::string::npos) << r.status().message();
  }
}

TEST(ChatTemplateTest, DetectsGoldenPhi3Metadata) {
  auto f = GgufFile::Open(testing::GoldenDir() + "/tokenizers/ggml-vocab-phi-3.gguf");
  if (!f.ok()) GTEST_SKIP() << "SKIPPED: ../shared/golden not found";
  auto jinja = f->GetString("tokenizer.chat_template");
  ASSERT_TRUE(jinja.ok()) << jinja.status().message();
  auto kind = DetectChatTemplate(*jinja);
  ASSERT_TRUE(kind.ok()) << kind.status().message();
  EXPECT_EQ(*kind, ChatTemplateKind::kPhi3);
}

}  // namespace
}  // namespace pocketlm
