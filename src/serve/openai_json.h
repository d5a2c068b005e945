// Response bodies in the shapes of the OpenAI API reference:
//   chat.completion        platform.openai.com/docs/api-reference/chat/object
//   chat.completion.chunk  platform.openai.com/docs/api-reference/chat/streaming
//   text_completion        platform.openai.com/docs/api-reference/completions/object (streamed chunks have the
//                          same object name and shape, with the new text in choices[0].text)
//   list of model          platform.openai.com/docs/api-reference/models/list
// Streams are server-sent events: one "data: JSON\n\n" per chunk, then "data: [DONE]\n\n".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "serve/job.h"
#include "serve/request.h"

namespace pocketlm::serve {

// What every response of one request shares.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChat;
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds, the same in every chunk
  std::string model;    // the requested model id
};

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens served from the prefix cache (usage.prompt_tokens_details)
};

nlohmann::json CompletionJson(const ResponseMeta& m, std::string_view text, FinishReason finish, const Usage& u);

// A streamed chunk. Chat: the first chunk carries delta {"role": "assistant", "content": ""}, text chunks
// delta {"content": TEXT}, the last one an empty delta and the finish_reason.
nlohmann::json RoleChunkJson(const ResponseMeta& m);
nlohmann::json TextChunkJson(const ResponseMeta& m, std::string_view text);
nlohmann::json FinishChunkJson(const ResponseMeta& m, FinishReason finish);
// stream_options.include_usage: a chunk with no choices and the usage, after the finish chunk.
nlohmann::json UsageChunkJson(const ResponseMeta& m, const Usage& u);

struct ModelEntry {
  std::string id;
  std::string parent;  // "" for the base; the base id for an adapter (as vLLM lists LoRA modules)
};
nlohmann::json ModelListJson(const std::vector<ModelEntry>& models, int64_t created);

// Serializes; text that is not valid UTF-8 (a model can emit any bytes) gets U+FFFD instead of an exception.
std::string Dump(const nlohmann::json& j);
// One server-sent event: "data: " + JSON + "\n\n".
std::string SseData(const nlohmann::json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace pocketlm::serve
