#include "options.h"

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pocketlm::cli {

void ModelOptions::AddTo(CLI::App* app, bool with_context) {
  app->add_option("-m,--model", model_path, "Model file (GGUF)")->required();
  app->add_option("--lora", lora, "LoRA adapter (GGUF) applied at scale 1; repeat for several");
  app->add_option("--lora-scaled", lora_scaled_args, "LoRA adapter applied at SCALE: --lora-scaled PATH SCALE")
      ->type_size(2)
      ->type_name("PATH SCALE");
  app->add_option("-t,--threads", threads, "Threads, including the main one")
      ->capture_default_str()
      ->check(CLI::Range(1, 512));
  app->add_flag(
      "--gguf-layout", gguf_layout,
      "Keep the weights in the file's row layout instead of interleaving q4_0/q5_0/q8_0/q4_K/q6_K rows for the faster "
      "decode kernel (same results up to rounding; for speed comparisons)");
  if (with_context) {
    app->add_option("-c,--ctx", ctx, "Context size in tokens (0: the model's, at most 4096)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 20));
  }
}

void SamplingOptions::AddTo(CLI::App* app) {
  app->add_option("--temp", p.temperature, "Temperature; 0 = greedy")->capture_default_str();
  app->add_option("--top-k", p.top_k, "Keep the K most likely tokens; 0 = off")->capture_default_str();
  app->add_option("--top-p", p.top_p, "Nucleus sampling mass; 1 = off")->capture_default_str();
  app->add_option("--min-p", p.min_p, "Drop tokens below MIN_P x the top probability; 0 = off")->capture_default_str();
  app->add_option("--repeat-penalty", p.repeat_penalty, "Penalty for recent tokens; 1 = off")->capture_default_str();
  app->add_option("--repeat-last-n", p.repeat_last_n, "How many recent tokens the penalty sees")->capture_default_str();
  app->add_option("-s,--seed", p.seed, "Random seed: the same seed gives the same text")->capture_default_str();
}

int Fail(const Status& s) {
  std::string msg = s.message();
  for (char& ch : msg) {
    if (ch == '\n') ch = ' ';
  }
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 1;
}

Status ReadTextFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("cannot read '" + path + "'");
  *out = ss.str();
  return Status::Ok();
}

unsigned long long PeakRssBytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<unsigned long long>(ru.ru_maxrss) * 1024;  // KiB on Linux
}

Result<ChatFormat> ChooseChatTemplate(const Model& model, const std::string& name, MissingMarkers missing,
                                      std::string* note) {
  PLM_ASSIGN_OR_RETURN(ChatFormat f, ChooseChatFormat(model, name, missing));
  if (note != nullptr && (f.fell_back || f.markers_as_text)) *note = f.description;
  return f;
}

Result<LoadedModel> LoadModel(const ModelOptions& o) {
  LoadedModel lm;
  PLM_ASSIGN_OR_RETURN(lm.model, Model::Load(o.model_path, {.interleave_for_inference = !o.gguf_layout}));
  std::vector<ActiveLora> active;
  auto add = [&](const std::string& path, float scale) -> Status {
    PLM_ASSIGN_OR_RETURN(auto ad, LoraAdapter::Load(path));
    active.push_back({ad.get(), scale});
    lm.adapters.push_back(std::move(ad));
    return Status::Ok();
  };
  for (const auto& p : o.lora) PLM_RETURN_IF_ERROR(add(p, 1.0f));
  if (o.lora_scaled_args.size() % 2 != 0) return InvalidArgument("--lora-scaled takes PATH SCALE");
  for (size_t i = 0; i < o.lora_scaled_args.size(); i += 2) {
    const std::string& s = o.lora_scaled_args[i + 1];
    char* end = nullptr;
    const float scale = std::strtof(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(scale)) {
      return InvalidArgument("--lora-scaled " + o.lora_scaled_args[i] + " " + s + ": the scale is not a number");
    }
    PLM_RETURN_IF_ERROR(add(o.lora_scaled_args[i], scale));
  }
  ContextParams cp;
  cp.n_threads = o.threads;
  cp.n_ctx = o.ctx;
  PLM_ASSIGN_OR_RETURN(lm.ctx, Context::Create(*lm.model, cp));
  PLM_RETURN_IF_ERROR(lm.ctx->SetAdapters(active));
  return lm;
}

}  // namespace pocketlm::cli
