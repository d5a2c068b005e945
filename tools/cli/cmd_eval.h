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

  void Declare(Options& o);
};

int EvalCommand(const EvalOptions& o);

}  // namespace pocketlm::cli
