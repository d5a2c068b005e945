#include "cmd_serve.h"

#include "options.h"

namespace pocketlm::cli {

void ServeCliOptions::AddTo(CLI::App* app) {
  app->add_option("-m,--model", o.model_path, "Base model (GGUF)")->required();
  app->add_option("--lora", lora,
                  "Adapter to keep resident, as NAME=PATH; requests select it with \"model\": \"NAME\". Repeat "
                  "for several");
  app->add_option("--alias", o.alias, "The base model's id in the API (default: the file name without .gguf)");
  app->add_option("--chat-template", o.chat_template,
                  "Chat template: chatml, llama3, llama2, gemma, phi3 (default: detected from the model)");
  app->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  app->add_option("--port", o.port, "Port; 0 picks a free one (printed at start)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app->add_option("-t,--threads", o.threads, "Threads per decoding step, including the scheduler thread")
      ->capture_default_str()
      ->check(CLI::Range(1, 512));
  app->add_option("-c,--ctx", o.ctx, "Context positions per sequence (0: the model's, at most 4096)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("--parallel", o.parallel, "Sequences generated concurrently, each with its own KV cache")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app->add_option("--queue", o.max_queue, "Requests that may wait for a free sequence; more get 429")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  app->add_option("--max-tokens", o.max_tokens, "Largest max_tokens a request may ask for, and the default")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--max-body-kib", max_body_kib, "Largest request body in KiB; larger ones get 413")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--adapter-budget-mib", adapter_budget_mib,
                  "Memory for resident adapters in MiB (0: no limit); beyond it the least recently used are evicted "
                  "and loaded again from their files when next requested")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  app->add_option("--shutdown-grace", o.shutdown_grace_seconds,
                  "Seconds requests in flight may take to finish after SIGINT/SIGTERM")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  app->add_flag("--no-admin", no_admin, "Disable POST/DELETE /admin/adapters (they load files named by clients)");
}

int ServeCommand(const ServeCliOptions& opts) {
  serve::ServeOptions o = opts.o;
  for (const std::string& spec : opts.lora) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return Fail(InvalidArgument("--lora " + spec + ": expected NAME=PATH"));
    }
    o.adapters.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }
  o.max_body_bytes = static_cast<size_t>(opts.max_body_kib) * 1024;
  o.adapter_budget_bytes = static_cast<size_t>(opts.adapter_budget_mib) << 20;
  o.admin = !opts.no_admin;
  if (Status s = serve::RunServer(o); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace pocketlm::cli
