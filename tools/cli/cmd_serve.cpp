#include "cmd_serve.h"

#include <algorithm>
#include <cstdlib>

#include "options.h"
#include "serve/auth.h"

namespace pocketlm::cli {

void ServeCliOptions::Declare(Options& t) {
  t.Add("-m,--model", &o.model_path, "Base model (GGUF)").Required();
  LoraOption(t, &lora,
             "Adapter to keep resident, as NAME=PATH or PATH (named after its file without .gguf); requests select "
             "it with \"model\": \"NAME\". Repeat for several");
  t.Add("--alias", &o.alias, "The base model's id in the API (default: the file name without .gguf)");
  ChatTemplateOption(t, &o.chat_template);
  t.Add("--host", &o.host, "Address to listen on").ShowDefault();
  t.Add("--port", &o.port, "Port; 0 picks a free one (printed at start)").ShowDefault().Range(0, 65535);
  ThreadsOption(t, &o.threads, "Threads per decoding step, including the scheduler thread");
  ContextOption(t, &o.ctx, "Context positions per sequence (0: the model's, at most 4096)");
  t.Add("--parallel", &o.parallel, "Sequences generated concurrently, each with its own KV cache")
      .ShowDefault()
      .Range(1, 256);
  t.Add("--queue", &o.max_queue, "Requests that may wait for a free sequence; more get 429")
      .ShowDefault()
      .Range(0, 4096);
  t.Add("--max-tokens", &o.max_tokens, "Largest max_tokens a request may ask for, and the default")
      .ShowDefault()
      .Range(1, 1 << 20);
  t.Add("--max-body-kib", &max_body_kib, "Largest request body in KiB; larger ones get 413")
      .ShowDefault()
      .Range(1, 1 << 20);
  t.Add("--adapter-budget-mib", &adapter_budget_mib,
        "Memory for resident adapters in MiB (0: no limit); beyond it the least recently used are evicted "
        "and loaded again from their files when next requested")
      .ShowDefault()
      .Range(0, 1 << 24);
  t.Add("--shutdown-grace", &o.shutdown_grace_seconds,
        "Seconds requests in flight may take to finish after SIGINT/SIGTERM")
      .ShowDefault()
      .Range(0, 3600);
  t.Add("--api-key", &api_keys,
        "Require 'Authorization: Bearer KEY' on every endpoint but /health (401 otherwise); repeat for "
        "several keys. Other local users can read a command line (ps): prefer --api-key-file, or the "
        "environment variable POCKETLM_API_KEY, whose key is accepted too")
      .Metavar("KEY");
  t.Add("--api-key-file", &api_key_file,
        "Accept the API keys in FILE, one per line (blank lines and lines starting with # are ignored)")
      .Metavar("FILE");
  t.Add("--adapter-dir", &o.adapter_dir,
        "Turn on POST /admin/adapters {\"name\": NAME, \"path\": FILE} and DELETE /admin/adapters/NAME, "
        "which load only files inside DIR, FILE relative to it (without this option they are off: they "
        "open files on the server)")
      .Metavar("DIR");
  // Hidden: the admin API is off unless --adapter-dir is given; the flag only keeps old scripts going.
  t.Flag("--no-admin", &no_admin, "The admin API is off unless --adapter-dir is given").Hidden();
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
    LoraSpec lora = ParseLoraSpec(spec);
    if (lora.name.empty() || lora.path.empty()) {
      return Fail(InvalidArgument("--lora " + spec + ": expected PATH or NAME=PATH"));
    }
    o.adapters.emplace_back(std::move(lora.name), std::move(lora.path));
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
