#include "serve/prepare.h"

#include <algorithm>
#include <random>

namespace pocketlm::serve {

std::variant<AdapterSet, ApiError> ResolveAdapters(const CompletionRequest& r, const AdapterRegistry& registry) {
  AdapterSet set;
  if (!r.model.empty() && r.model != registry.base_id()) {
    AdapterPtr a = registry.Find(r.model);
    if (a == nullptr) {
      return NotFoundError("The model '" + r.model + "' does not exist (GET /v1/models lists the base '" +
                               registry.base_id() + "' and the loaded adapters)",
                           "model", "model_not_found");
    }
    set.push_back({std::move(a), 1.0f});
  }
  for (size_t i = 0; i < r.lora.size(); ++i) {
    AdapterPtr a = registry.Find(r.lora[i].name);
    if (a == nullptr) {
      return NotFoundError("no adapter named '" + r.lora[i].name + "' is loaded", "lora[" + std::to_string(i) + "]",
                           "model_not_found");
    }
    auto same = std::find_if(set.begin(), set.end(), [&](const ScaledAdapter& s) { return s.adapter == a; });
    if (same != set.end()) {
      same->scale = r.lora[i].scale;
    } else {
      set.push_back({std::move(a), r.lora[i].scale});
    }
  }
  return set;
}

namespace {

std::variant<std::vector<int32_t>, ApiError> Tokenize(const CompletionRequest& r, const PrepareEnv& env) {
  const Tokenizer& tok = env.model->tokenizer();
  if (r.endpoint == Endpoint::kCompletion) {
    // As `pocketlm run -p`: BOS when the vocabulary asks for it, special-token texts recognized.
    auto ids = tok.Encode(r.prompt, /*add_special=*/true, /*parse_special=*/true);
    if (!ids.ok()) return ErrorFromStatus(ids.status(), "prompt");
    return std::move(ids).value();
  }
  auto tc = RenderAndTokenizeChat(tok, env.chat_format, r.messages, /*add_generation_prompt=*/true);
  if (!tc.ok()) return BadRequest(tc.status().message(), "messages");
  return std::move(tc.value().tokens);
}

}  // namespace

std::variant<GenerationJob, ApiError> PrepareJob(const CompletionRequest& r, const PrepareEnv& env) {
  GenerationJob job;
  auto set = ResolveAdapters(r, *env.registry);
  if (auto* e = std::get_if<ApiError>(&set)) return *e;
  job.adapters = std::move(std::get<AdapterSet>(set));

  auto tokens = Tokenize(r, env);
  if (auto* e = std::get_if<ApiError>(&tokens)) return *e;
  job.prompt = std::move(std::get<std::vector<int32_t>>(tokens));
  const int n_prompt = static_cast<int>(job.prompt.size());
  if (n_prompt == 0) return BadRequest("the prompt is empty (and the model adds no BOS token)", "prompt");
  const char* where = r.endpoint == Endpoint::kChat ? "messages" : "prompt";
  if (n_prompt > env.n_ctx) {
    return BadRequest("the prompt has " + std::to_string(n_prompt) + " tokens but the context holds " +
                          std::to_string(env.n_ctx) + " (shorten it, or start the server with a larger context)",
                      where, "context_length_exceeded");
  }
  if (r.max_tokens && *r.max_tokens > env.max_tokens_cap) {
    return BadRequest("max_tokens " + std::to_string(*r.max_tokens) + " is above this server's limit of " +
                          std::to_string(env.max_tokens_cap),
                      "max_tokens");
  }
  // Generation also ends when the context is full (finish_reason "length").
  job.max_tokens = r.max_tokens ? *r.max_tokens : env.max_tokens_cap;
  job.sampling = r.sampling;
  if (!r.has_seed) job.sampling.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  job.stop = r.stop;
  // A chat template whose markers are spelled as text ends a reply with text, not with an end-of-generation token.
  if (r.endpoint == Endpoint::kChat && !env.chat_format.end_of_turn_text.empty()) {
    job.stop.push_back(env.chat_format.end_of_turn_text);
  }
  return job;
}

}  // namespace pocketlm::serve
