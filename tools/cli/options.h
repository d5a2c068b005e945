// Options and option sets shared by several commands, each declared once (defaults, help text and checks together),
// and the arguments of the small commands.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "lora/adapter.h"
#include "model/chat_format_choice.h"
#include "model/context.h"
#include "model/model.h"
#include "model/sampler.h"
#include "option_table.h"
#include "tokenizer/chat_template.h"

namespace pocketlm::cli {

// -t/--threads, -c/--ctx, --chat-template and --lora, as every command that has them spells them.
Option ThreadsOption(Options& o, int* threads, const std::string& help = "Threads, including the main one");
Option ContextOption(Options& o, int* ctx,
                     const std::string& help = "Context size in tokens (0: the model's, at most 4096)");
Option ChatTemplateOption(Options& o, std::string* name);
// --lora [NAME=]PATH, repeatable. The name matters to `serve` (requests select the adapter by it; default: the file
// name without .gguf) and is accepted and ignored elsewhere, so one spelling works in every command.
Option LoraOption(Options& o, std::vector<std::string>* specs, const std::string& help);
struct LoraSpec {
  std::string name, path;
};
// "NAME=PATH" when the text before the first '=' is a plain name (letters, digits, '-', '_', '.') and the whole
// argument is not an existing file; otherwise all of it is the path, named after its file.
LoraSpec ParseLoraSpec(const std::string& spec);

struct ModelOptions {
  std::string model_path;
  std::vector<std::string> lora;              // [NAME=]PATH
  std::vector<std::string> lora_scaled_args;  // PATH SCALE pairs, flattened
  int threads = 2;
  int ctx = 0;
  bool gguf_layout = false;  // keep the file's row layout (no load-time interleaving)
  int n_batch = 0;           // tokens evaluated together (0: the context's default); not a command-line option

  void Declare(Options& o, bool with_context = true);
};

// The adapters of --lora (scale 1) and --lora-scaled, loaded, in that order.
struct LoadedAdapters {
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  std::vector<ActiveLora> active;  // points into `adapters`
};
Result<LoadedAdapters> LoadAdapters(const ModelOptions& o);

// A model with its adapters loaded and a context ready to evaluate.
struct LoadedModel {
  std::unique_ptr<Model> model;
  std::vector<std::unique_ptr<LoraAdapter>> adapters;
  std::unique_ptr<Context> ctx;
};
Result<LoadedModel> LoadModel(const ModelOptions& o);

struct SamplingOptions {
  SamplingParams p;
  void Declare(Options& o);
};

// Prints "error: <message>" on one line to stderr and returns exit code 1.
int Fail(const Status& s);

// `pocketlm run`: with `chat`, the prompt is one user message rendered with the model's chat template
// (`chat_template` overrides it) and generation stops at the end of the assistant's turn.
struct RunOptions {
  ModelOptions model;
  SamplingOptions sampling;
  std::string prompt, prompt_file, chat_template;
  int n_predict = 128;
  bool no_bos = false;
  bool chat = false;
  void Declare(Options& o);
};
int RunCommand(const RunOptions& r);

struct InfoOptions {
  std::string path;
  bool all_metadata = false;
  void Declare(Options& o);
};
int InfoCommand(const InfoOptions& o);

struct TokenizeOptions {
  std::string vocab_path;
  bool no_bos = false, special = false;
  void Declare(Options& o);
};
int TokenizeCommand(const TokenizeOptions& o);

struct LogitsOptions {
  ModelOptions model;
  std::string prompt_file, out_path;
  int n_gen = 16;
  void Declare(Options& o);
};
int LogitsCommand(const LogitsOptions& o);

struct BenchOptions {
  ModelOptions model;
  int n_prompt = 256, n_gen = 64, reps = 5;
  bool json = false;
  void Declare(Options& o);
};
int BenchCommand(const BenchOptions& o);

struct QuantizeOptions {
  std::string in, out, type, output_type, embd_type, imatrix;
  int threads = 2;
  bool allow_requantize = false, pure = false;
  void Declare(Options& o);
};
int QuantizeCommand(const QuantizeOptions& o);

// `pocketlm adapter convert|info|merge`: conversion between PEFT LoRA directories and GGUF LoRA adapters, and
// adapters merged into a copy of their base.
struct AdapterOptions {
  std::optional<Options> convert, info, merge;  // the subcommands, to tell which one was given
  std::string in, out, base_model, base_name;
  std::string info_path;
  ModelOptions merge_model;  // -m BASE, --lora, --lora-scaled, -t
  std::string merge_out, merge_text;
  double min_kept = 0.9;
  bool force = false;

  void Declare(Options& adapter);
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
