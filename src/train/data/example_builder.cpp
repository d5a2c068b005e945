// One JSONL line -> TrainExample: validation (UTF-8, nesting depth, JSON, field types), rendering with the chat
// template, tokenization, loss mask. nlohmann::json throws on bad input; every exception stops here.
#include "train/data/example_builder.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>

#include "base/utf8.h"

namespace pocketlm::data_internal {
namespace {

using Json = nlohmann::json;
using Outcome = std::variant<TrainExample, LineError>;

// Nothing legitimate nests deeply, and a bound keeps memory and recursion (json's destructor, type checks) small
// whatever the input.
constexpr int kMaxDepth = 64;

LineError Bad(SkipReason reason, std::string what) {
  return {reason, std::move(what), false};
}

// TokenizeChat refuses message text with kInvalidArgument; anything else is about the vocabulary, not the line.
bool IsTextError(const Result<TokenizedChat>& r) {
  return r.status().code() == ErrorCode::kInvalidArgument;
}

// Byte offset of the first byte that is not part of valid UTF-8, or npos.
size_t FirstInvalidUtf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t at = pos;
    uint32_t cp = 0;
    if (!DecodeUtf8(s, &pos, &cp)) return at;
  }
  return std::string_view::npos;
}

bool TooDeep(std::string_view s) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// "[json.exception.parse_error.101] parse error at line 1, column 7: ..." -> "parse error at column 7: ..."
std::string JsonMessage(std::string s) {
  if (s.rfind("[json.exception", 0) == 0) {
    if (size_t p = s.find("] "); p != std::string::npos) s.erase(0, p + 2);
  }
  if (size_t p = s.find("at line 1, column "); p != std::string::npos) s.replace(p, 18, "at column ");
  return s;
}

const Json* Field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string TypeError(std::string_view field, std::string_view want, const Json& got) {
  return "\"" + std::string(field) + "\" must be " + std::string(want) + ", not " + got.type_name();
}

// OpenAI chat messages: [{"role": ..., "content": ..., "weight": 0|1}, ...].
std::variant<std::vector<ChatMessage>, LineError> ParseMessages(const Json& j) {
  if (!j.is_array()) return Bad(SkipReason::kBadFields, TypeError("messages", "an array", j));
  if (j.empty()) return Bad(SkipReason::kBadFields, "\"messages\" is empty");
  std::vector<ChatMessage> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const Json& m = j[i];
    if (!m.is_object()) return Bad(SkipReason::kBadFields, TypeError(at, "an object", m));
    const Json* role = Field(m, "role");
    const Json* content = Field(m, "content");
    if (role == nullptr) return Bad(SkipReason::kBadFields, at + " has no \"role\"");
    if (!role->is_string()) return Bad(SkipReason::kBadFields, TypeError(at + ".role", "a string", *role));
    if (content == nullptr) return Bad(SkipReason::kBadFields, at + " has no \"content\"");
    if (!content->is_string()) return Bad(SkipReason::kBadFields, TypeError(at + ".content", "a string", *content));
    ChatMessage msg;
    Result<ChatRole> r = ChatRoleFromName(role->get_ref<const std::string&>());
    if (!r.ok()) return Bad(SkipReason::kUnknownRole, at + ": " + r.status().message());
    msg.role = *r;
    msg.content = content->get<std::string>();
    if (const Json* w = Field(m, "weight"); w != nullptr) {
      if (!w->is_number() || (w->get<double>() != 0.0 && w->get<double>() != 1.0)) {
        return Bad(SkipReason::kBadFields, at + ".weight must be 0 or 1");
      }
      msg.train = w->get<double>() != 0.0;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

std::variant<TrainExample, LineError> ExampleBuilder::Build(std::string_view line) {
  try {
    if (size_t bad = FirstInvalidUtf8(line); bad != std::string_view::npos) {
      return Bad(SkipReason::kInvalidUtf8, "invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
    }
    if (TooDeep(line)) {
      return Bad(SkipReason::kInvalidJson, "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::exception& e) {
      return Bad(SkipReason::kInvalidJson, "invalid JSON: " + JsonMessage(e.what()));
    }
    if (!j.is_object()) {
      return Bad(SkipReason::kBadFields, std::string("a line must be a JSON object, not ") + j.type_name());
    }
    const Json* text = Field(j, "text");
    const Json* prompt = Field(j, "prompt");
    const Json* completion = Field(j, "completion");
    const Json* messages = Field(j, "messages");
    const int shapes = (text != nullptr) + (prompt != nullptr || completion != nullptr) + (messages != nullptr);
    if (shapes == 0) {
      return Bad(SkipReason::kBadFields, "no \"text\", \"prompt\"/\"completion\" or \"messages\" field");
    }
    if (shapes > 1) {
      return Bad(SkipReason::kBadFields,
                 "more than one of \"text\", \"prompt\"/\"completion\" and \"messages\"; a line holds one example");
    }
    if (text != nullptr) {
      if (!text->is_string()) return Bad(SkipReason::kBadFields, TypeError("text", "a string", *text));
      if (text->get_ref<const std::string&>().empty()) return Bad(SkipReason::kBadFields, "\"text\" is empty");
      return FromText(text->get_ref<const std::string&>());
    }
    if (messages == nullptr) {
      if (prompt == nullptr) return Bad(SkipReason::kBadFields, "\"completion\" without \"prompt\"");
      if (completion == nullptr) return Bad(SkipReason::kBadFields, "\"prompt\" without \"completion\"");
      if (!prompt->is_string()) return Bad(SkipReason::kBadFields, TypeError("prompt", "a string", *prompt));
      if (!completion->is_string()) {
        return Bad(SkipReason::kBadFields, TypeError("completion", "a string", *completion));
      }
      return FromPromptCompletion(prompt->get_ref<const std::string&>(), completion->get_ref<const std::string&>());
    }
    auto parsed = ParseMessages(*messages);
    if (auto* e = std::get_if<LineError>(&parsed)) return std::move(*e);
    return FromMessages(std::get<std::vector<ChatMessage>>(parsed));
  } catch (const std::exception& e) {  // allocation failure or a json type error we did not foresee
    return Bad(SkipReason::kBadFields, std::string("unusable line: ") + e.what());
  }
}

std::variant<TrainExample, LineError> ExampleBuilder::FromText(std::string_view text) {
  const ChatSegment seg{ChatSegment::kContent, std::string(text), true};
  Result<TokenizedChat> chat = TokenizeChat(tok_, std::span(&seg, 1));
  if (!chat.ok()) return LineError{SkipReason::kSpecialTokenText, chat.status().message(), !IsTextError(chat)};
  return Finish(std::move(chat).value(), opt_.add_eos);
}

std::variant<TrainExample, LineError> ExampleBuilder::FromPromptCompletion(std::string_view prompt,
                                                                           std::string_view completion) {
  const ChatSegment segs[] = {{ChatSegment::kContent, std::string(prompt), opt_.train_on_prompt},
                              {ChatSegment::kContent, std::string(completion), true}};
  Result<TokenizedChat> chat = TokenizeChat(tok_, segs);
  if (!chat.ok()) return LineError{SkipReason::kSpecialTokenText, chat.status().message(), !IsTextError(chat)};
  return Finish(std::move(chat).value(), opt_.add_eos);
}

std::variant<TrainExample, LineError> ExampleBuilder::FromMessages(std::span<const ChatMessage> messages) {
  if (LineError e = CheckTemplateOnce(); e.fatal) return e;
  Result<std::vector<ChatSegment>> segs = RenderChat(opt_.chat_template, messages, /*add_generation_prompt=*/false);
  if (!segs.ok()) return Bad(SkipReason::kBadConversation, segs.status().message());
  Result<TokenizedChat> chat = TokenizeChat(tok_, *segs);
  if (!chat.ok()) return LineError{SkipReason::kSpecialTokenText, chat.status().message(), !IsTextError(chat)};
  if (opt_.train_on_prompt) std::fill(chat->trainable.begin(), chat->trainable.end(), 1);
  return Finish(std::move(chat).value(), false);
}

std::variant<TrainExample, LineError> ExampleBuilder::Finish(TokenizedChat chat, bool eos) {
  TrainExample ex{std::move(chat.tokens), std::move(chat.trainable)};
  if (eos && tok_.eos() >= 0) {
    ex.tokens.push_back(tok_.eos());
    ex.trainable.push_back(1);
  }
  if (!ex.trainable.empty()) ex.trainable[0] = 0;
  if (opt_.max_tokens > 0 && ex.tokens.size() > static_cast<size_t>(opt_.max_tokens)) {
    return Bad(SkipReason::kTooLong,
               std::to_string(ex.tokens.size()) + " tokens, more than max_tokens = " + std::to_string(opt_.max_tokens));
  }
  if (std::find(ex.trainable.begin(), ex.trainable.end(), 1) == ex.trainable.end()) {
    return Bad(SkipReason::kNoTrainableTokens,
               "nothing to train on (a conversation needs an assistant reply without \"weight\": 0)");
  }
  return ex;
}

// The template's special tokens must exist in the vocabulary; checked once, on the first "messages" line, since a
// mismatch would make every such line fail.
LineError ExampleBuilder::CheckTemplateOnce() {
  if (template_checked_) return {};
  // Three turns, so that templates with markers between turns (Llama-2's "<s>") show them too.
  const ChatMessage probe[] = {
      {ChatRole::kUser, "a", true}, {ChatRole::kAssistant, "b", true}, {ChatRole::kUser, "c", true}};
  Result<std::vector<ChatSegment>> segs = RenderChat(opt_.chat_template, probe, true);
  Status s = segs.ok() ? TokenizeChat(tok_, *segs).status() : segs.status();
  if (!s.ok()) {
    return {SkipReason::kBadFields,
            "chat template " + std::string(ChatTemplateName(opt_.chat_template)) + ": " + s.message(), true};
  }
  template_checked_ = true;
  return {};
}

}  // namespace pocketlm::data_internal
