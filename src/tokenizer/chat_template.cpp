// Chat templates: names, detection from the Jinja source, and rendering into segments. The expected renderings
// are those of the models' Hugging Face templates and of llama.cpp's tests/test-chat-template.cpp (conversation
// system / user / assistant / user / assistant "   I am an assistant   " / user).
#include "tokenizer/chat_template.h"

#include <iterator>

#include "base/utf8.h"

namespace pocketlm {
namespace {

constexpr std::string_view kNames[] = {"chatml", "llama3", "llama2", "gemma", "phi3"};
constexpr std::string_view kNameList = "chatml, llama3, llama2, gemma, phi3";

// Python's str.isspace() (what Jinja's `trim` and `.strip()` use): the ASCII whitespace, the separators
// U+001C..U+001F, and the Unicode White_Space code points.
bool IsPythonSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string_view StripFront(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &next, &cp) || !IsPythonSpace(cp)) break;
    pos = next;
  }
  return s.substr(pos);
}

std::string_view StripBack(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;  // back up to the lead byte of the last code point (at most 3 continuation bytes)
    while (start > 0 && end - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &pos, &cp) || pos != end || !IsPythonSpace(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

std::string_view Strip(std::string_view s) {
  return StripBack(StripFront(s));
}

std::string_view RoleName(ChatRole r) {
  switch (r) {
    case ChatRole::kSystem: return "system";
    case ChatRole::kUser: return "user";
    case ChatRole::kAssistant: return "assistant";
  }
  return "user";
}

bool Trains(const ChatMessage& m) {
  return m.role == ChatRole::kAssistant && m.train;
}

class Builder {
 public:
  void Special(std::string_view text, bool trainable = false) { Add(ChatSegment::kSpecialToken, text, trainable); }
  void Text(std::string_view text, bool trainable = false) { Add(ChatSegment::kTemplateText, text, trainable); }
  void Content(std::string_view text, bool trainable = false) { Add(ChatSegment::kContent, text, trainable); }
  size_t size() const { return segs_.size(); }
  // Python's .strip() applied to the concatenation of segments [first, end): whitespace leaves the outer
  // segments, and segments that become empty are dropped.
  void StripRange(size_t first) {
    size_t i = first;
    for (; i < segs_.size(); ++i) {
      std::string& t = segs_[i].text;
      t = std::string(StripFront(t));
      if (!t.empty()) break;
    }
    for (size_t j = segs_.size(); j > i; --j) {
      std::string& t = segs_[j - 1].text;
      t = std::string(StripBack(t));
      if (!t.empty()) break;
    }
    std::erase_if(segs_, [](const ChatSegment& s) { return s.text.empty(); });
  }
  std::vector<ChatSegment> Take() { return std::move(segs_); }

 private:
  void Add(ChatSegment::Kind kind, std::string_view text, bool trainable) {
    segs_.push_back({kind, std::string(text), trainable});
  }
  std::vector<ChatSegment> segs_;
};

// Llama-2 and Gemma (HF templates): an optional system message first, then user, assistant, user, ...
Status CheckAlternation(std::string_view name, std::span<const ChatMessage> messages) {
  size_t first = (!messages.empty() && messages[0].role == ChatRole::kSystem) ? 1 : 0;
  if (first == messages.size()) {
    return InvalidArgument(std::string(name) + " chat template: a conversation needs a user message");
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatRole want = (i - first) % 2 == 0 ? ChatRole::kUser : ChatRole::kAssistant;
    if (messages[i].role != want) {
      return InvalidArgument(std::string(name) + " chat template: message " + std::to_string(i + 1) + " is '" +
                             std::string(RoleName(messages[i].role)) +
                             "'; roles must alternate user/assistant/user/... after an optional first system "
                             "message (as the model's template requires)");
    }
  }
  return Status::Ok();
}

void RenderChatML(std::span<const ChatMessage> messages, bool gen, Builder* b) {
  for (const ChatMessage& m : messages) {
    b->Special("<|im_start|>");
    b->Text(std::string(RoleName(m.role)) + "\n");
    b->Content(m.content, Trains(m));
    b->Special("<|im_end|>", Trains(m));
    b->Text("\n");
  }
  if (gen) {
    b->Special("<|im_start|>");
    b->Text("assistant\n");
  }
}

void RenderLlama3(std::span<const ChatMessage> messages, bool gen, Builder* b) {
  for (const ChatMessage& m : messages) {
    b->Special("<|start_header_id|>");
    b->Text(RoleName(m.role));
    b->Special("<|end_header_id|>");
    b->Text("\n\n");
    b->Content(Strip(m.content), Trains(m));
    b->Special("<|eot_id|>", Trains(m));
  }
  if (gen) {
    b->Special("<|start_header_id|>");
    b->Text("assistant");
    b->Special("<|end_header_id|>");
    b->Text("\n\n");
  }
}

// meta-llama/Llama-2-*-chat-hf: bos + '[INST] ' + content.strip() + ' [/INST]' per user turn, where the first
// user turn's content is '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user; ' ' + reply.strip() + ' ' + eos per reply.
void RenderLlama2(std::span<const ChatMessage> messages, Builder* b) {
  size_t first = messages[0].role == ChatRole::kSystem ? 1 : 0;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == ChatRole::kUser) {
      if (i != first) b->Special("<s>");  // the first BOS is the sequence's own, added by tokenization
      b->Text("[INST] ");
      const size_t content_start = b->size();
      if (i == first && first == 1) {
        b->Text("<<SYS>>\n");
        b->Content(messages[0].content);
        b->Text("\n<</SYS>>\n\n");
      }
      b->Content(m.content);
      b->StripRange(content_start);
      b->Text(" [/INST]");
    } else {
      const bool t = Trains(m);
      b->Text(" ", t);
      b->Content(Strip(m.content), t);
      b->Text(" ", t);
      b->Special("</s>", t);
    }
  }
}

// google/gemma-*-it: '<start_of_turn>' + role + '\n' + content | trim + '<end_of_turn>\n', role "model" for the
// assistant. The system text goes before the first user message (llama.cpp: trim(system) + "\n\n").
void RenderGemma(std::span<const ChatMessage> messages, bool gen, Builder* b) {
  size_t first = messages[0].role == ChatRole::kSystem ? 1 : 0;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool t = Trains(m);
    b->Special("<start_of_turn>");
    b->Text(m.role == ChatRole::kAssistant ? "model\n" : "user\n");
    if (i == first && first == 1) {
      const std::string_view system = Strip(messages[0].content);
      if (!system.empty()) {
        b->Content(system);
        b->Text("\n\n");
      }
    }
    b->Content(Strip(m.content), t);
    b->Special("<end_of_turn>", t);
    b->Text("\n");
  }
  if (gen) {
    b->Special("<start_of_turn>");
    b->Text("model\n");
  }
}

void RenderPhi3(std::span<const ChatMessage> messages, bool gen, Builder* b) {
  for (const ChatMessage& m : messages) {
    b->Special("<|" + std::string(RoleName(m.role)) + "|>");
    b->Text("\n");
    b->Content(m.content, Trains(m));
    b->Special("<|end|>", Trains(m));
    b->Text("\n");
  }
  if (gen) {
    b->Special("<|assistant|>");
    b->Text("\n");
  }
}

}  // namespace

std::string_view ChatTemplateName(ChatTemplateKind kind) {
  return kNames[static_cast<int>(kind)];
}

Result<ChatTemplateKind> ChatTemplateFromName(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (name == kNames[i]) return static_cast<ChatTemplateKind>(i);
  }
  return InvalidArgument("unknown chat template '" + std::string(name) + "'; built-in: " + std::string(kNameList));
}

// The markers and their order follow llama.cpp's llm_chat_detect_template.
Result<ChatTemplateKind> DetectChatTemplate(std::string_view jinja) {
  auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  const std::string hint = "; name one of these chat templates: " + std::string(kNameList);
  if (jinja.empty()) return NotFound("the model has no tokenizer.chat_template" + hint);
  if (auto by_name = ChatTemplateFromName(jinja); by_name.ok()) return by_name;
  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return Unsupported("the model's chat template is Phi-4's, which is not built in" + hint);
    return ChatTemplateKind::kChatML;
  }
  if (has("[INST]")) {
    if (has("<<SYS>>")) return ChatTemplateKind::kLlama2;
    return Unsupported("the model's chat template is a Mistral [INST] variant, which is not built in" + hint);
  }
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplateKind::kPhi3;
  if (has("<start_of_turn>")) return ChatTemplateKind::kGemma;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplateKind::kLlama3;
  std::string head(jinja.substr(0, 60));
  return Unsupported("unrecognized tokenizer.chat_template ('" + head + (jinja.size() > 60 ? "...'" : "'") + ")" +
                     hint);
}

Result<ChatRole> ChatRoleFromName(std::string_view name) {
  if (name == "system") return ChatRole::kSystem;
  if (name == "user") return ChatRole::kUser;
  if (name == "assistant") return ChatRole::kAssistant;
  return InvalidArgument("unknown role '" + std::string(name) + "' (expected system, user or assistant)");
}

Result<std::vector<ChatSegment>> RenderChat(ChatTemplateKind kind, std::span<const ChatMessage> messages,
                                            bool add_generation_prompt) {
  if (messages.empty()) return InvalidArgument("a conversation needs at least one message");
  Builder b;
  switch (kind) {
    case ChatTemplateKind::kChatML: RenderChatML(messages, add_generation_prompt, &b); break;
    case ChatTemplateKind::kLlama3: RenderLlama3(messages, add_generation_prompt, &b); break;
    case ChatTemplateKind::kLlama2:
      PLM_RETURN_IF_ERROR(CheckAlternation("llama2", messages));
      RenderLlama2(messages, &b);  // its template has no generation prompt: the text ends with " [/INST]"
      break;
    case ChatTemplateKind::kGemma:
      PLM_RETURN_IF_ERROR(CheckAlternation("gemma", messages));
      RenderGemma(messages, add_generation_prompt, &b);
      break;
    case ChatTemplateKind::kPhi3: RenderPhi3(messages, add_generation_prompt, &b); break;
  }
  std::vector<ChatSegment> segs = b.Take();
  std::erase_if(segs, [](const ChatSegment& s) { return s.text.empty(); });
  return segs;
}

std::string JoinSegments(std::span<const ChatSegment> segments) {
  std::string out;
  for (const ChatSegment& s : segments) out += s.text;
  return out;
}

}  // namespace pocketlm
