// pocketlm command line: parses arguments and hands over to one function per subcommand.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cmd_eval.h"
#include "cmd_finetune.h"
#include "cmd_import.h"
#include "cmd_serve.h"
#include "options.h"

using namespace pocketlm::cli;

int main(int argc, char** argv) {
  CLI::App app{"pocketlm: fine-tune, quantize and run small language models on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pocketlm 0.1.0");

  ModelOptions run_model;
  SamplingOptions run_sampling;
  RunOptions run_opts;
  CLI::App* run = app.add_subcommand("run", "Generate text from a prompt, streaming it to stdout");
  run_model.AddTo(run);
  run_sampling.AddTo(run);
  run->add_option("-p,--prompt", run_opts.prompt, "Prompt text");
  run->add_option("-f,--file", run_opts.prompt_file, "Read the prompt from a file");
  run->add_option("-n,--n-predict", run_opts.n_predict, "Maximum tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  run->add_flag("--no-bos", run_opts.no_bos, "Do not add the BOS token the vocabulary asks for");
  run->add_flag("--chat", run_opts.chat,
                "The prompt is a user message: render it with the model's chat template, print only the reply");
  run->add_option("--chat-template", run_opts.chat_template,
                  "With --chat: chatml, llama3, llama2, gemma or phi3 (default: from the model)");

  std::string info_path;
  bool info_all = false;
  CLI::App* info = app.add_subcommand("info", "Print a GGUF file's metadata, tensors, types and sizes");
  info->add_option("-m,--model,file", info_path, "GGUF file (model, adapter or vocabulary)")->required();
  info->add_flag("--all", info_all, "Print long arrays in full");

  std::string vocab_path;
  bool tok_no_bos = false, tok_special = false;
  CLI::App* tokenize = app.add_subcommand("tokenize", "Tokenize stdin; prints space-separated token ids");
  tokenize->add_option("-m,--model", vocab_path, "GGUF file with a tokenizer")->required();
  tokenize->add_flag("--no-bos", tok_no_bos, "Do not add BOS/EOS tokens");
  tokenize->add_flag("--special", tok_special, "Recognise special token texts such as <|im_start|>");

  ModelOptions logits_model;
  std::string logits_prompt, logits_out;
  int logits_n = 16;
  CLI::App* logits =
      app.add_subcommand("logits", "Write prompt tokens, logits at every position and a greedy continuation");
  logits_model.AddTo(logits);
  logits->add_option("-f,--file", logits_prompt, "Prompt file")->required();
  logits->add_option("-o,--output", logits_out, "Output .bin (format: shared/golden/README.md)")->required();
  logits->add_option("-n", logits_n, "Greedy tokens to generate after the prompt")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));

  ModelOptions bench_model;
  int bench_p = 256, bench_n = 64, bench_reps = 5;
  bool bench_json = false;
  CLI::App* bench = app.add_subcommand("bench", "Measure prefill and decode speed (median of several runs)");
  bench_model.AddTo(bench, /*with_context=*/false);
  bench->add_option("-p", bench_p, "Prompt tokens for the prefill test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  bench->add_option("-n", bench_n, "Tokens for the decode test")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  bench->add_option("-r,--reps", bench_reps, "Repetitions; the median is reported")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  bench->add_flag("--json", bench_json, "Print one JSON object");

  std::string qz_in, qz_out, qz_type, qz_output_type, qz_embd_type;
  int qz_threads = 2;
  bool qz_requant = false, qz_pure = false;
  CLI::App* quantize =
      app.add_subcommand("quantize", "Quantize a GGUF model to a llama.cpp preset (Q4_K_M, Q8_0, ...)");
  quantize->add_option("input", qz_in, "Model to quantize (GGUF, F32/F16/BF16)")->required();
  quantize->add_option("output", qz_out, "Output GGUF (written atomically)")->required();
  quantize
      ->add_option("--type", qz_type,
                   "Preset, as llama-quantize names them: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S "
                   "Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16 F32 (Q3_K/Q4_K/Q5_K mean the _M presets; "
                   "case does not matter)")
      ->required();
  quantize->add_option("-t,--threads", qz_threads, "Threads, including the main one")
      ->capture_default_str()
      ->check(CLI::Range(1, 512));
  quantize->add_flag("--allow-requantize", qz_requant, "Accept an already quantized input (loses more quality)");
  quantize->add_flag("--pure", qz_pure, "Every quantizable tensor gets the preset's base type (no per-tensor mix)");
  quantize->add_option("--output-tensor-type", qz_output_type, "Type for output.weight (e.g. q8_0)");
  quantize->add_option("--token-embedding-type", qz_embd_type, "Type for token_embd.weight (e.g. q8_0)");

  FinetuneOptions ft;
  CLI::App* finetune =
      app.add_subcommand("finetune", "Train a LoRA adapter on JSONL data (also on a quantized base), on the CPU");
  ft.AddTo(finetune);

  EvalOptions ev;
  CLI::App* eval = app.add_subcommand("eval", "Perplexity, exact-match accuracy or KL divergence of a model");
  ev.AddTo(eval);

  AdapterOptions adapter_opts;
  CLI::App* adapter =
      app.add_subcommand("adapter", "Convert, inspect and merge LoRA adapters (PEFT <-> GGUF; into a base)");
  adapter_opts.AddTo(adapter);

  ServeCliOptions serve_opts;
  CLI::App* serve = app.add_subcommand("serve", "OpenAI-compatible HTTP server with per-request LoRA adapters");
  serve_opts.AddTo(serve);

  HfCommandOptions hf_opts;
  hf_opts.AddTo(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --version
    std::fprintf(stderr, "error: %s (see 'pocketlm %s--help')\n", e.what(),
                 app.get_subcommands().empty() ? "" : (app.get_subcommands()[0]->get_name() + " ").c_str());
    return 1;
  }
  try {
    if (run->parsed()) return RunCommand(run_model, run_sampling, run_opts);
    if (info->parsed()) return InfoCommand(info_path, info_all);
    if (tokenize->parsed()) return TokenizeCommand(vocab_path, tok_no_bos, tok_special);
    if (logits->parsed()) return LogitsCommand(logits_model, logits_prompt, logits_out, logits_n);
    if (bench->parsed()) return BenchCommand(bench_model, bench_p, bench_n, bench_reps, bench_json);
    if (quantize->parsed()) {
      return QuantizeCommand(qz_in, qz_out, qz_type, qz_threads, qz_requant, qz_pure, qz_output_type, qz_embd_type);
    }
    if (adapter->parsed()) return AdapterCommand(adapter_opts);
    if (hf_opts.parsed()) return HfCommand(hf_opts);
    if (finetune->parsed()) return FinetuneCommand(ft);
    if (serve->parsed()) return ServeCommand(serve_opts);
    if (eval->parsed()) return EvalCommand(ev);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
