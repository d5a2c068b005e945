// pocketlm command line: the table of commands; each declares its options (option_table.h) and runs.
#include "cmd_calibrate.h"
#include "cmd_eval.h"
#include "cmd_finetune.h"
#include "cmd_import.h"
#include "cmd_serve.h"
#include "option_table.h"
#include "options.h"

using namespace pocketlm::cli;

int main(int argc, char** argv) {
  const Command commands[] = {
      MakeCommand<RunOptions>("run", "Generate text from a prompt, streaming it to stdout", RunCommand),
      MakeCommand<InfoOptions>("info", "Print a GGUF file's metadata, tensors, types and sizes", InfoCommand),
      MakeCommand<TokenizeOptions>("tokenize", "Tokenize stdin; prints space-separated token ids", TokenizeCommand),
      MakeCommand<LogitsOptions>("logits", "Write prompt tokens, logits at every position and a greedy continuation",
                                 LogitsCommand),
      MakeCommand<BenchOptions>("bench", "Measure prefill and decode speed (median of several runs)", BenchCommand),
      MakeCommand<QuantizeOptions>("quantize", "Quantize a GGUF model to a llama.cpp preset (Q4_K_M, Q8_0, ...)",
                                   QuantizeCommand),
      MakeCommand<CalibrateCliOptions>(
          "calibrate", "Importance matrix of a model on a calibration text, for low-bit quantization (llama-imatrix)",
          CalibrateCommand),
      MakeCommand<FinetuneOptions>(
          "finetune", "Train a LoRA adapter on JSONL data (also on a quantized base), on the CPU", FinetuneCommand),
      MakeCommand<EvalOptions>("eval", "Perplexity, exact-match accuracy or KL divergence of a model", EvalCommand),
      MakeCommand<AdapterOptions>("adapter", "Convert, inspect and merge LoRA adapters (PEFT <-> GGUF; into a base)",
                                  AdapterCommand),
      MakeCommand<ServeCliOptions>("serve", "OpenAI-compatible HTTP server with per-request LoRA adapters",
                                   ServeCommand),
      MakeCommand<ImportOptions>(
          "import", "Convert a Hugging Face model directory (Llama, Qwen2, Phi-3, Gemma-2; safetensors) to GGUF",
          ImportCommand),
      MakeCommand<ExportOptions>(
          "export", "Write an F32/F16/BF16 GGUF model as a Hugging Face directory (safetensors, config, tokenizer)",
          ExportCommand),
  };
  return RunCommandLine(commands, "pocketlm 0.1.0", argc, argv);
}
