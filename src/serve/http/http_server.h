// `pocketlm serve`: an OpenAI-compatible HTTP server over one base model and any number of adapters.
//   POST /v1/chat/completions, POST /v1/completions   (streamed as server-sent events with "stream": true)
//   GET  /v1/models, GET /health
//   POST /admin/adapters {"name", "path"}, DELETE /admin/adapters/NAME   (only with --adapter-dir DIR; "path"
//   names a file relative to DIR)
// With API keys set, every endpoint but /health needs `Authorization: Bearer KEY` (src/serve/auth.h).
// Built on cpp-httplib; without it (a cross build with no arm64 package) RunServer reports kUnsupported.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocketlm::serve {

struct ServeOptions {
  std::string model_path;
  std::vector<std::pair<std::string, std::string>> adapters;  // (name, path) loaded at start
  std::string alias;                                          // the base's id; "" = the file name's stem
  std::string chat_template;                                  // "" = detect from tokenizer.chat_template
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (printed at start)
  int threads = 2;  // per sequence's context, including the scheduler thread
  int ctx = 0;      // positions per sequence; 0 = min(training context, 4096)
  int parallel = 4;
  int max_queue = 64;
  int max_tokens = 2048;                    // cap on a request's max_tokens, and its default
  size_t max_body_bytes = size_t{1} << 20;  // larger bodies get 413
  size_t adapter_budget_bytes = 0;          // resident adapters beyond this evict the least recently used; 0 = none
  int shutdown_grace_seconds = 30;          // on SIGINT/SIGTERM, how long in-flight requests may finish
  // Any key set: every endpoint but /health needs `Authorization: Bearer KEY`; none: the API is open.
  std::vector<std::string> api_keys;
  // The /admin endpoints load adapters from this directory only; "" = they are off (they open files here).
  std::string adapter_dir;
};

// Loads the model and adapters, listens, and serves until SIGINT or SIGTERM; then stops accepting, lets the
// requests in flight finish (a second signal, or the grace period, cancels them) and returns Ok.
Status RunServer(const ServeOptions& o);

}  // namespace pocketlm::serve
