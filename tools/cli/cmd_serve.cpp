#include "cmd_serve.h"

#include <algorithm>
#include <cstdlib>

#include "options.h"
#include "serve/auth.h"

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
  app->add_option("--api-key", api_keys,
                  "Require 'Authorization: Bearer KEY' on every endpoint but /health (401 otherwise); repeat for "
                  "several keys. Other local users can read a command line (ps): prefer --api-key-file, or the "
                  "environment variable POCKETLM_API_KEY, whose key is accepted too")
      ->type_name("KEY");
  app->add_option("--api-key-file", api_key_file,
                  "Accept the API keys in FILE, one per line (blank lines and lines starting with # are ignored)")
      ->type_name("FILE");
  app->add_option("--adapter-dir", o.adapter_dir,
                  "Turn on POST /admin/adapters {\"name\": NAME, \"path\": FILE} and DELETE /admin/adapters/NAME, "
                  "which load only files inside DIR, FILE relative to it (without this option they are off: they "
                  "open files on the server)")
      ->type_name("DIR");
  // Hidden (empty group): the admin API is off unless --adapter-dir is given; the flag only keeps old scripts going.
  app->add_flag("--no-admin", no_admin, "The admin API is off unless --adapter-dir is given")->group("");
}

namespace {

// The keys of --api-key, --api-key-file and POCKETLM_API_KEY, without repeats; errors never contain a key.
Result<std::vector<std::string>> CollectApiKeys(const ServeCliOptions& opts) {
  std::vector<std::string> keys;
  auto add = [&keys](const std::string& key, const std::string& source) -> Status {
    PLM_RETURN_IF_ERROR(serve::ValidateApiKey(key, source));
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    return Status::Ok();
  };
  for (const std::string& key : opts.api_keys) PLM_RETURN_IF_ERROR(add(key, "--api-key"));
  if (!opts.api_key_file.empty()) {
    std::string text;
    PLM_RETURN_IF_ERROR(ReadTextFile(opts.api_key_file, &text).WithContext("--api-key-file"));
    PLM_ASSIGN_OR_RETURN(std::vector<std::string> from_file, serve::ParseApiKeyFile(text, opts.api_key_file));
    for (const std::string& key : from_file) PLM_RETURN_IF_ERROR(add(key, "--api-key-file " + opts.api_key_file));
  }
  // Set but empty fails rather than starting an open server: `POCKETLM_API_KEY=$TYPO pocketlm serve` meant a key.
  if (const char* env = std::getenv("POCKETLM_API_KEY"); env != nullptr) {
    if (*env == '\0') return InvalidArgument("POCKETLM_API_KEY is set but empty: give it a key, or unset it");
    PLM_RETURN_IF_ERROR(add(env, "POCKETLM_API_KEY"));
  }
  return keys;
}

}  // namespace

int ServeCommand(const ServeCliOptions& opts) {
  serve::ServeOptions o = opts.o;
  if (opts.no_admin && !o.adapter_dir.empty()) {
    return Fail(
        InvalidArgument("--no-admin contradicts --adapter-dir: the admin API is off unless --adapter-dir "
                        "is given, so drop --no-admin"));
  }
  for (const std::string& spec : opts.lora) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return Fail(InvalidArgument("--lora " + spec + ": expected NAME=PATH"));
    }
    o.adapters.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }
  o.max_body_bytes = static_cast<size_t>(opts.max_body_kib) * 1024;
  o.adapter_budget_bytes = static_cast<size_t>(opts.adapter_budget_mib) << 20;
  Result<std::vector<std::string>> keys = CollectApiKeys(opts);
  if (!keys.ok()) return Fail(keys.status());
  o.api_keys = std::move(keys).value();
  if (Status s = serve::RunServer(o); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace pocketlm::cli
