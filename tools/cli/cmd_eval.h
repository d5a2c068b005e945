// `pocketlm eval`: perplexity, exact-match accuracy and KL divergence of a model (with adapters).
#pragma once

#include <string>

#include "option_table.h"
#include "options.h"

namespace pocketlm::cli {

struct EvalOptions {
  ModelOptions model;
  std::string perplexity_path, exact_match_path, kl_reference, kl_text;
  std::string chat_template;
  int max_tokens = 64;
  int64_t limit = 0;
  int chunks = 0;              // --kl on plain text: only the first N chunks (0: all)
  bool kl_llama_file = false;  // round the reference's log-probabilities as llama-perplexity's base file does

  void Declare(Options& o);
};

int EvalCommand(const EvalOptions& o);

}  // namespace pocketlm::cli
