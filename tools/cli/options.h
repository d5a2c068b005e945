// Option sets shared by several subcommands, each declared once: defaults, help text and parsing together.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "lora/adapter.h"
#include "model/chat_format_choice.h"
#include "model/context.h"
#include "model/model.h"
#include "model/sampler.h"
#include "tokenizer/chat_template.h"

namespace pocketlm::cli {

struct ModelOptions {
  std::string model_path;
  std::vector<std::string> lora;
  std::vector<std::string> lora_scaled_args;  // PATH SCALE pairs, flattened
  int threads = 2;
  int ctx = 0;
  bool gguf_layout = false;  // keep the file's row layout (no load-time interleaving)

  void AddTo(CLI::App* app, bool with_context = true);
};

// A model with its adapters loaded and a context ready to evaluate.
struct LoadedModel {
  std::unique_ptr<Model> model;
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  std::unique_ptr<Context> ctx;
};
Result<LoadedModel> LoadModel(const ModelOptions& o);

struct SamplingOptions {
  SamplingParams p;
  void AddTo(CLI::App* app);
};

// Prints "error: <message>" on one line to stderr and returns exit code 1.
int Fail(const Status& s);

// `pocketlm run`: with `chat`, the prompt is one user message rendered with the model's chat template
// (`chat_template` overrides it) and generation stops at the end of the assistant's turn.
struct RunOptions {
  std::string prompt, prompt_file, chat_template;
  int n_predict = 128;
  bool no_bos = false;
  bool chat = false;
};
int RunCommand(const ModelOptions& m, const SamplingOptions& s, const RunOptions& r);
int InfoCommand(const std::string& path, bool all_metadata);
int TokenizeCommand(const std::string& vocab_path, bool no_bos, bool special);
int LogitsCommand(const ModelOptions& m, const std::string& prompt_file, const std::string& out_path, int n_gen);
int BenchCommand(const ModelOptions& m, int n_prompt, int n_gen, int reps, bool json);
int QuantizeCommand(const std::string& in, const std::string& out, const std::string& type, int threads,
                    bool allow_requantize, bool pure, const std::string& output_type, const std::string& embd_type);

// `pocketlm adapter convert|info|merge`: conversion between PEFT LoRA directories and GGUF LoRA adapters, and
// adapters merged into a copy of their base.
struct AdapterOptions {
  CLI::App* convert = nullptr;
  CLI::App* info = nullptr;
  CLI::App* merge = nullptr;
  std::string in, out, base_model, base_name;
  std::string info_path;
  ModelOptions merge_model;  // -m BASE, --lora, --lora-scaled, -t
  std::string merge_out, merge_text;
  double min_kept = 0.9;
  bool force = false;

  void AddTo(CLI::App* adapter);
};
int AdapterCommand(const AdapterOptions& o);

// Reads a whole file into *out; errors name the file.
Status ReadTextFile(const std::string& path, std::string* out);

// The process's peak resident memory so far (getrusage).
unsigned long long PeakRssBytes();

// The chat format for `model` by the one rule every front end shares (model/chat_format_choice.h). *note (when
// given) is set when the user should hear about the choice: a fallback to ChatML, or markers spelled as text.
Result<ChatFormat> ChooseChatTemplate(const Model& model, const std::string& name, MissingMarkers missing,
                                      std::string* note = nullptr);

}  // namespace pocketlm::cli
