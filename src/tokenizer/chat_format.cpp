#include "tokenizer/chat_format.h"

#include <algorithm>
#include <vector>

namespace pocketlm {
namespace {

// The template's markers, seen by rendering a short conversation that every template accepts (user, assistant,
// user, generation prompt). The end of turn is the special token that closes the (trainable) assistant reply.
struct TemplateMarkers {
  std::vector<std::string> missing;  // markers the vocabulary lacks, in order of first use
  std::string end_of_turn;
};

TemplateMarkers InspectMarkers(const Tokenizer& tok, ChatTemplateKind kind) {
  const ChatMessage sample[] = {
      {ChatRole::kUser, "u", true}, {ChatRole::kAssistant, "a", true}, {ChatRole::kUser, "u", true}};
  TemplateMarkers m;
  auto segments = RenderChat(kind, sample, /*add_generation_prompt=*/true);
  if (!segments.ok()) return m;  // cannot happen for this conversation; then nothing is known to be missing
  for (const ChatSegment& s : segments.value()) {
    if (s.kind != ChatSegment::kSpecialToken) continue;
    if (s.trainable && m.end_of_turn.empty()) m.end_of_turn = s.text;
    if (!tok.FindSpecialToken(s.text) && std::find(m.missing.begin(), m.missing.end(), s.text) == m.missing.end()) {
      m.missing.push_back(s.text);
    }
  }
  return m;
}

std::string JoinWithSpaces(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

Result<ChatFormat> ChooseChatFormat(const Tokenizer& tok, std::optional<std::string_view> jinja, std::string_view name,
                                    MissingMarkers missing) {
  ChatFormat f;
  std::string why;
  if (!name.empty()) {
    PLM_ASSIGN_OR_RETURN(f.kind, ChatTemplateFromName(name));
    why = "chosen by name";
  } else if (!jinja || jinja->empty()) {
    f.kind = ChatTemplateKind::kChatML;
    f.fell_back = true;
    why = "the model has no tokenizer.chat_template; name another template to use it";
  } else if (auto detected = DetectChatTemplate(*jinja); detected.ok()) {
    f.kind = detected.value();
    why = "recognized from the model's tokenizer.chat_template";
  } else {
    f.kind = ChatTemplateKind::kChatML;
    f.fell_back = true;
    why = "the model's tokenizer.chat_template is not one pocketlm has built in; name a template to use another";
  }
  const TemplateMarkers markers = InspectMarkers(tok, f.kind);
  if (!markers.missing.empty()) {
    if (missing == MissingMarkers::kAsText) {
      f.markers_as_text = true;
      f.end_of_turn_text = markers.end_of_turn;
      why += "; the vocabulary lacks " + JoinWithSpaces(markers.missing) + ", so they are tokenized as plain text";
    } else {
      why += "; the vocabulary lacks " + JoinWithSpaces(markers.missing) + ", so conversations cannot be tokenized";
    }
  }
  f.description = "chat template " + std::string(ChatTemplateName(f.kind)) + " (" + why + ")";
  return f;
}

Result<TokenizedChat> RenderAndTokenizeChat(const Tokenizer& tok, const ChatFormat& format,
                                            std::span<const ChatMessage> messages, bool add_generation_prompt) {
  PLM_ASSIGN_OR_RETURN(std::vector<ChatSegment> segments, RenderChat(format.kind, messages, add_generation_prompt));
  if (format.markers_as_text) {
    for (ChatSegment& s : segments) {
      if (s.kind == ChatSegment::kSpecialToken && !tok.FindSpecialToken(s.text)) s.kind = ChatSegment::kTemplateText;
    }
  }
  return TokenizeChat(tok, segments);
}

}  // namespace pocketlm
