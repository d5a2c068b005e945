// Built-in chat templates: a conversation -> text segments -> token ids with a loss mask.
//
// Each template reproduces what the model's Hugging Face `tokenizer.chat_template` (Jinja) renders, with the
// choices llama.cpp's llm_chat_apply_template makes where the Jinja templates differ between model versions:
//   chatml  (Qwen2/2.5)  <|im_start|>ROLE\nCONTENT<|im_end|>\n ...            prompt: <|im_start|>assistant\n
//   llama3               <|start_header_id|>ROLE<|end_header_id|>\n\nTRIM(CONTENT)<|eot_id|> ...
//                                                                   prompt:
//                                                                   <|start_header_id|>assistant<|end_header_id|>\n\n
//   llama2               [INST] <<SYS>>\nSYSTEM\n<</SYS>>\n\nUSER [/INST] ASSISTANT </s><s>[INST] USER [/INST]
//                        (Meta's format: user and assistant text stripped, one space around the reply; there is no
//                        generation prompt, the text already ends with [/INST])
//   gemma   (1/2)        <start_of_turn>user\nTRIM(CONTENT)<end_of_turn>\n<start_of_turn>model\n...
//   phi3                 <|ROLE|>\nCONTENT<|end|>\n ...                      prompt: <|assistant|>\n
// Differences from some Hugging Face templates, on purpose:
//   - No template inserts a default system prompt (Qwen2.5's "You are Qwen, created by Alibaba Cloud...",
//     Llama-3.1's "Cutting Knowledge Date"); put one in the data if the model expects it. llama.cpp does the same.
//   - Gemma has no system role (its HF template raises "System role not supported"). We prepend the trimmed
//     system text and "\n\n" to the first user message, as llama.cpp and Gemma 3's template do. A system message
//     is only accepted first.
//   - Phi-3's newer templates end a finished conversation with eos_token (<|endoftext|>); we do not (llama.cpp
//     does not either): the turn already ends with <|end|>, the token the model stops on.
//   - llama2 and gemma require user/assistant alternation starting with user (their HF templates raise otherwise);
//     chatml, llama3 and phi3 accept any order.
// "TRIM" is Python's str.strip() (Jinja's `trim` filter and `.strip()`), so Unicode whitespace is stripped too.
//
// The rendered text never starts with BOS: TokenizeChat adds it when the vocabulary says add_bos, exactly once
// (for Llama-3 the template's <|begin_of_text|> is that BOS; Gemma and Phi-3 templates also begin with bos_token).
// Later BOS tokens that a template puts inside the conversation (Llama-2's "<s>[INST]" per turn) are rendered.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

enum class ChatTemplateKind { kChatML, kLlama3, kLlama2, kGemma, kPhi3 };

// "chatml", "llama3", "llama2", "gemma", "phi3".
std::string_view ChatTemplateName(ChatTemplateKind kind);
Result<ChatTemplateKind> ChatTemplateFromName(std::string_view name);
// Recognizes a model's `tokenizer.chat_template` (GGUF metadata) by the markers it uses, as llama.cpp's
// llm_chat_detect_template does. An unknown or empty template is an error that names --chat-template.
Result<ChatTemplateKind> DetectChatTemplate(std::string_view jinja);

enum class ChatRole { kSystem, kUser, kAssistant };
Result<ChatRole> ChatRoleFromName(std::string_view name);  // "system", "user", "assistant" (OpenAI names)

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  std::string content;
  bool train = true;  // assistant messages only: false keeps the reply out of the loss (OpenAI's "weight": 0)
};

// One piece of a rendered conversation.
struct ChatSegment {
  enum Kind : uint8_t {
    kSpecialToken,  // exactly one control token, looked up by its text (e.g. "<|im_start|>")
    kTemplateText,  // plain text the template adds (e.g. "assistant\n", " [/INST]")
    kContent,       // a message's text: never parsed for special tokens
  };
  Kind kind = kTemplateText;
  std::string text;
  bool trainable = false;  // an assistant reply (with train = true) or its end-of-turn marker
};

// Renders `messages`. With add_generation_prompt the text ends with the header of an assistant turn (for
// inference). Errors: a role order the template does not allow, or nothing to render.
Result<std::vector<ChatSegment>> RenderChat(ChatTemplateKind kind, std::span<const ChatMessage> messages,
                                            bool add_generation_prompt);
// The segments' text concatenated: the string the Jinja template would produce (without the leading BOS).
std::string JoinSegments(std::span<const ChatSegment> segments);

struct TokenizedChat {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trainable;  // per token: 1 when any byte of its text comes from a trainable segment
};

// Tokenizes segments the way llama.cpp tokenizes the whole rendered prompt with parse_special = true (BOS when
// the vocab says add_bos, special tokens split the text, lstrip / rstrip attributes, the SentencePiece space
// prefix after each special token, text between special tokens tokenized as one piece so tokens may straddle
// segment boundaries) with one difference: special-token texts inside kContent segments stay plain text. A
// content that the vocabulary still turns into BOS, EOS, an end-of-generation token or one of the template's
// markers (possible for user-defined tokens, which llama.cpp always parses) is refused with an error, so message
// text can never inject a control token. Also an error: a kSpecialToken the vocabulary lacks.
Result<TokenizedChat> TokenizeChat(const Tokenizer& tokenizer, std::span<const ChatSegment> segments);

}  // namespace pocketlm
