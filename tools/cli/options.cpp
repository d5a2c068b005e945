#include "options.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pocketlm::cli {

Option ThreadsOption(Options& o, int* threads, const std::string& help) {
  return o.Add("-t,--threads", threads, help).ShowDefault().Range(1, 512);
}

Option ContextOption(Options& o, int* ctx, const std::string& help) {
  return o.Add("-c,--ctx", ctx, help).ShowDefault().Range(0, 1 << 20);
}

Option ChatTemplateOption(Options& o, std::string* name) {
  return o.Add("--chat-template", name, "chatml, llama3, llama2, gemma or phi3 (default: from the model's metadata)");
}

Option LoraOption(Options& o, std::vector<std::string>* specs, const std::string& help) {
  return o.Add("--lora", specs, help).Metavar("[NAME=]PATH");
}

LoraSpec ParseLoraSpec(const std::string& spec) {
  const size_t eq = spec.find('=');
  const auto plain = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  };
  std::error_code ec;
  if (eq != std::string::npos && eq > 0 && std::all_of(spec.begin(), spec.begin() + eq, plain) &&
      !std::filesystem::is_regular_file(spec, ec)) {
    return {spec.substr(0, eq), spec.substr(eq + 1)};
  }
  std::string name = std::filesystem::path(spec).filename().string();
  if (name.ends_with(".gguf")) name.resize(name.size() - 5);
  return {name, spec};
}

void ModelOptions::Declare(Options& o, bool with_context) {
  o.Add("-m,--model", &model_path, "Model file (GGUF)").Required();
  LoraOption(o, &lora, "LoRA adapter (GGUF) applied at scale 1; repeat for several");
  o.AddPairs("--lora-scaled", &lora_scaled_args, "LoRA adapter applied at SCALE: --lora-scaled PATH SCALE",
             "PATH SCALE");
  ThreadsOption(o, &threads);
  o.Flag("--gguf-layout", &gguf_layout,
         "Keep the weights in the file's row layout instead of interleaving q4_0/q5_0/q8_0/q4_K/q6_K rows for the "
         "faster decode kernel (same results up to rounding; for speed comparisons)");
  if (with_context) ContextOption(o, &ctx);
}

void SamplingOptions::Declare(Options& o) {
  o.Add("--temp", &p.temperature, "Temperature; 0 = greedy").ShowDefault();
  o.Add("--top-k", &p.top_k, "Keep the K most likely tokens; 0 = off").ShowDefault();
  o.Add("--top-p", &p.top_p, "Nucleus sampling mass; 1 = off").ShowDefault();
  o.Add("--min-p", &p.min_p, "Drop tokens below MIN_P x the top probability; 0 = off").ShowDefault();
  o.Add("--repeat-penalty", &p.repeat_penalty, "Penalty for recent tokens; 1 = off").ShowDefault();
  o.Add("--repeat-last-n", &p.repeat_last_n, "How many recent tokens the penalty sees").ShowDefault();
  o.Add("-s,--seed", &p.seed, "Random seed: the same seed gives the same text").ShowDefault();
}

void RunOptions::Declare(Options& o) {
  model.Declare(o);
  sampling.Declare(o);
  o.Add("-p,--prompt", &prompt, "Prompt text");
  o.Add("-f,--file", &prompt_file, "Read the prompt from a file");
  o.Add("-n,--n-predict", &n_predict, "Maximum tokens to generate").ShowDefault().Range(0, 1 << 20);
  o.Flag("--no-bos", &no_bos, "Do not add the BOS token the vocabulary asks for");
  o.Flag("--chat", &chat,
         "The prompt is a user message: render it with the model's chat template, print only the reply");
  ChatTemplateOption(o, &chat_template);
}

void InfoOptions::Declare(Options& o) {
  o.Add("-m,--model,file", &path, "GGUF file (model, adapter or vocabulary)").Required();
  o.Flag("--all", &all_metadata, "Print long arrays in full");
}

void TokenizeOptions::Declare(Options& o) {
  o.Add("-m,--model", &vocab_path, "GGUF file with a tokenizer").Required();
  o.Flag("--no-bos", &no_bos, "Do not add BOS/EOS tokens");
  o.Flag("--special", &special, "Recognise special token texts such as <|im_start|>");
}

void LogitsOptions::Declare(Options& o) {
  model.Declare(o);
  o.Add("-f,--file", &prompt_file, "Prompt file").Required();
  o.Add("-o,--output", &out_path, "Output .bin (format: shared/golden/README.md)").Required();
  o.Add("-n", &n_gen, "Greedy tokens to generate after the prompt").ShowDefault().Range(0, 1 << 16);
}

void BenchOptions::Declare(Options& o) {
  model.Declare(o, /*with_context=*/false);
  o.Add("-p", &n_prompt, "Prompt tokens for the prefill test").ShowDefault().Range(1, 1 << 16);
  o.Add("-n", &n_gen, "Tokens for the decode test").ShowDefault().Range(1, 1 << 16);
  o.Add("-r,--reps", &reps, "Repetitions; the median is reported").ShowDefault().Range(1, 1000);
  o.Flag("--json", &json, "Print one JSON object");
}

void QuantizeOptions::Declare(Options& o) {
  o.Add("input", &in, "Model to quantize (GGUF, F32/F16/BF16)").Required();
  o.Add("output", &out, "Output GGUF (written atomically)").Required();
  o.Add(
       "--type", &type,
       "Preset, as llama-quantize names them: IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M Q2_K_S "
       "Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K_S Q4_K_M "
       "Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16 F32 (Q3_K/Q4_K/Q5_K mean the _M presets; case does not matter)")
      .Required();
  ThreadsOption(o, &threads);
  o.Flag("--allow-requantize", &allow_requantize, "Accept an already quantized input (loses more quality)");
  o.Flag("--pure", &pure, "Every quantizable tensor gets the preset's base type (no per-tensor mix)");
  o.Add("--output-tensor-type", &output_type, "Type for output.weight (e.g. q8_0)");
  o.Add("--token-embedding-type", &embd_type, "Type for token_embd.weight (e.g. q8_0)");
  o.Add("--imatrix", &imatrix,
        "Importance matrix (from `pocketlm calibrate` or llama-imatrix, binary or GGUF): weights each column's "
        "rounding error by how much the model uses it; needed by IQ1_S..IQ2_M");
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

Result<LoadedAdapters> LoadAdapters(const ModelOptions& o) {
  LoadedAdapters la;
  auto add = [&](const std::string& path, float scale) -> Status {
    PLM_ASSIGN_OR_RETURN(auto ad, LoraAdapter::Load(path));
    la.active.push_back({ad.get(), scale});
    la.adapters.push_back(std::move(ad));
    return Status::Ok();
  };
  for (const auto& spec : o.lora) PLM_RETURN_IF_ERROR(add(ParseLoraSpec(spec).path, 1.0f));
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
  return la;
}

Result<LoadedModel> LoadModel(const ModelOptions& o) {
  LoadedModel lm;
  PLM_ASSIGN_OR_RETURN(lm.model, Model::Load(o.model_path, {.interleave_for_inference = !o.gguf_layout}));
  PLM_ASSIGN_OR_RETURN(LoadedAdapters la, LoadAdapters(o));
  lm.adapters = std::move(la.adapters);
  ContextParams cp;
  cp.n_threads = o.threads;
  cp.n_ctx = o.ctx;
  if (o.n_batch > 0) cp.n_batch = o.n_batch;
  PLM_ASSIGN_OR_RETURN(lm.ctx, Context::Create(*lm.model, cp));
  PLM_RETURN_IF_ERROR(lm.ctx->SetAdapters(la.active));
  return lm;
}

}  // namespace pocketlm::cli
