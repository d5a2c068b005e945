// The chat template a front end uses for one model, chosen once by one rule for every front end (the CLI's run,
// eval and finetune, the server, the C API), and the whole conversation -> tokens path with it.
//
// The rule, as llama.cpp and llama-server apply it: a template named by the user; else the model's
// `tokenizer.chat_template` recognized by its markers (DetectChatTemplate); else ChatML. A template whose special
// tokens the vocabulary lacks (ChatML's <|im_start|> in a SentencePiece base model such as llama-tiny) either has
// its markers tokenized as plain text, as llama-server does when it parses special tokens the vocabulary does not
// have, or is refused when the conversation is tokenized (training on markers spelled as text is a choice the
// user should make by naming a template).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

enum class MissingMarkers {
  kRefuse,  // TokenizeChat's error names the missing token (training and evaluation data)
  kAsText,  // the missing markers become template text (serving and interactive chat)
};

struct ChatFormat {
  ChatTemplateKind kind = ChatTemplateKind::kChatML;
  // Markers the vocabulary lacks are tokenized as text (only with MissingMarkers::kAsText). Generation then cannot
  // stop on an end-of-turn token, so `end_of_turn_text` is a stop string for it.
  bool markers_as_text = false;
  std::string end_of_turn_text;  // with markers_as_text: what ends an assistant turn, e.g. "<|im_end|>"
  // One line saying which template is used and why, for the front end to announce once ("chat template: chatml
  // (the model has none; ...)"). Always set.
  std::string description;
  bool fell_back = false;  // no template was named and the model's was absent or unknown: ChatML was chosen
};

// `jinja`: the model's tokenizer.chat_template, nullopt when it has none. `name`: the user's choice, "" for none.
// Errors: an unknown name only; everything else falls back.
Result<ChatFormat> ChooseChatFormat(const Tokenizer& tok, std::optional<std::string_view> jinja, std::string_view name,
                                    MissingMarkers missing);

// RenderChat with the format's template, the missing markers turned into text when the format says so, then
// TokenizeChat.
Result<TokenizedChat> RenderAndTokenizeChat(const Tokenizer& tok, const ChatFormat& format,
                                            std::span<const ChatMessage> messages, bool add_generation_prompt);

}  // namespace pocketlm
