// A parsed request -> a job the scheduler can run: the model id resolved to an adapter set, messages rendered
// with the chat template and tokenized, and the limits checked (prompt within the context, max_tokens within the
// server's cap). Everything that can be refused is refused here, before the job is queued.
#pragma once

#include <string>
#include <variant>

#include "model/model.h"
#include "serve/adapter_registry.h"
#include "serve/api_error.h"
#include "serve/job.h"
#include "serve/request.h"
#include "tokenizer/chat_format.h"

namespace pocketlm::serve {

struct PrepareEnv {
  const Model* model = nullptr;
  const AdapterRegistry* registry = nullptr;
  ChatFormat chat_format;  // how messages become a prompt (model/chat_format_choice.h)
  int n_ctx = 0;           // positions per sequence
  int max_tokens_cap = 0;  // largest max_tokens a request may ask for; also the default
};

// Model selection: "model" is the base id (or omitted) for no adapter, or an adapter name for that adapter at
// scale 1; each "lora" entry adds an adapter at its scale (or sets the scale of the one "model" named).
std::variant<AdapterSet, ApiError> ResolveAdapters(const CompletionRequest& r, const AdapterRegistry& registry);

std::variant<GenerationJob, ApiError> PrepareJob(const CompletionRequest& r, const PrepareEnv& env);

}  // namespace pocketlm::serve
