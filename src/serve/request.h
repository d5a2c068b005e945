// The body of POST /v1/chat/completions and /v1/completions, parsed and validated before anything is queued.
// Fields follow the OpenAI API reference (platform.openai.com/docs/api-reference/chat/create and
// /completions/create); pocketlm extensions are marked. Omitted sampling fields take the engine's defaults
// (model/sampler.h, llama.cpp's: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), not OpenAI's
// (temperature 1, top_p 1), as llama.cpp's server does. Accepted but ignored: presence_penalty and
// frequency_penalty (range-checked, no effect), user, metadata, store and other unknown fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/sampler.h"
#include "serve/api_error.h"
#include "tokenizer/chat_template.h"

namespace pocketlm::serve {

enum class Endpoint { kChat, kCompletion };

// pocketlm extension: {"lora": [{"name": "coding", "scale": 0.5}]} adds adapters by registry name.
struct LoraRequest {
  std::string name;
  float scale = 1.0f;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;  // "" when omitted: the base model
  std::vector<LoraRequest> lora;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completions
  std::optional<int> max_tokens;      // max_completion_tokens, or the older max_tokens
  SamplingParams sampling;
  bool has_seed = false;  // without one, each request draws a fresh seed
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage and no choices
};

// At most this many stop sequences, as OpenAI allows.
inline constexpr size_t kMaxStopSequences = 4;

using ParsedRequest = std::variant<CompletionRequest, ApiError>;

// Never throws: malformed JSON, wrong types and out-of-range values give a 400 ApiError naming the field.
ParsedRequest ParseCompletionRequest(std::string_view body, Endpoint endpoint);

}  // namespace pocketlm::serve
