#include "serve/openai_json.h"

namespace pocketlm::serve {
namespace {

using nlohmann::json;

json Head(const ResponseMeta& m, const char* object) {
  return json{
      {"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}, {"system_fingerprint", "pocketlm"}};
}

const char* ChunkObject(const ResponseMeta& m) {
  return m.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion";
}

json UsageJson(const Usage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

// One streamed choice: chat puts `delta`, completions put `text`.
json ChunkChoice(const ResponseMeta& m, json delta, std::string_view text, json finish) {
  json c{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", std::move(finish)}};
  if (m.endpoint == Endpoint::kChat) {
    c["delta"] = std::move(delta);
  } else {
    c["text"] = std::string(text);
  }
  return c;
}

}  // namespace

json CompletionJson(const ResponseMeta& m, std::string_view text, FinishReason finish, const Usage& u) {
  json j = Head(m, m.endpoint == Endpoint::kChat ? "chat.completion" : "text_completion");
  json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", FinishReasonName(finish)}};
  if (m.endpoint == Endpoint::kChat) {
    choice["message"] = json{{"role", "assistant"}, {"content", std::string(text)}, {"refusal", nullptr}};
  } else {
    choice["text"] = std::string(text);
  }
  j["choices"] = json::array({std::move(choice)});
  j["usage"] = UsageJson(u);
  return j;
}

json RoleChunkJson(const ResponseMeta& m) {
  json j = Head(m, ChunkObject(m));
  j["choices"] = json::array({ChunkChoice(m, json{{"role", "assistant"}, {"content", ""}}, "", nullptr)});
  return j;
}

json TextChunkJson(const ResponseMeta& m, std::string_view text) {
  json j = Head(m, ChunkObject(m));
  j["choices"] = json::array({ChunkChoice(m, json{{"content", std::string(text)}}, text, nullptr)});
  return j;
}

json FinishChunkJson(const ResponseMeta& m, FinishReason finish) {
  json j = Head(m, ChunkObject(m));
  j["choices"] = json::array({ChunkChoice(m, json::object(), "", FinishReasonName(finish))});
  return j;
}

json UsageChunkJson(const ResponseMeta& m, const Usage& u) {
  json j = Head(m, ChunkObject(m));
  j["choices"] = json::array();
  j["usage"] = UsageJson(u);
  return j;
}

json ModelListJson(const std::vector<ModelEntry>& models, int64_t created) {
  json data = json::array();
  for (const ModelEntry& e : models) {
    json m{{"id", e.id}, {"object", "model"}, {"created", created}, {"owned_by", "pocketlm"}};
    if (!e.parent.empty()) m["parent"] = e.parent;
    data.push_back(std::move(m));
  }
  return json{{"object", "list"}, {"data", std::move(data)}};
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

std::string SseData(const json& j) {
  return "data: " + Dump(j) + "\n\n";
}

}  // namespace pocketlm::serve
