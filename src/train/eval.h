// Quality measurements of a model (optionally with adapters, set on the Context passed in):
//   perplexity of text or of the trainable tokens of a JSONL dataset,
//   exact-match accuracy of greedy answers on a chat/completion test split,
//   KL divergence from a reference model on the same text (how much quantization or an adapter moved it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/context.h"
#include "tokenizer/chat_template.h"
#include "train/data/dataset.h"

namespace pocketlm {

struct PerplexityResult {
  double nll_sum = 0;  // sum of -log p(token) over scored tokens (natural log)
  int64_t n_scored = 0;
  double Perplexity() const;
  double MeanNll() const { return n_scored > 0 ? nll_sum / static_cast<double>(n_scored) : 0; }
};

// Scores every trainable token of each example (trainable[i]: predicted at i - 1), evaluating each example from
// an empty cache; examples longer than the context are cut into context-sized windows (the first token of a
// later window is predicted from that window alone).
Result<PerplexityResult> Perplexity(Context& ctx, const std::vector<TrainExample>& examples);

// One test item: the model is given `prompt` (already rendered and tokenized, generation prompt included) and
// must produce `expected` exactly (both trimmed of surrounding whitespace).
struct ExactMatchItem {
  std::vector<int32_t> prompt;
  std::string expected;
};
struct ExactMatchResult {
  int64_t n = 0, correct = 0;
  std::vector<std::string> first_misses;  // "expected X, got Y" for the first few wrong answers
  double Accuracy() const { return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0; }
};

// Reads a JSONL test split: {"messages": [..., {"role": "assistant", "content": EXPECTED}]} (the conversation up
// to the last reply is the prompt, rendered with `kind` and a generation prompt) or {"prompt", "completion"}.
// Bad lines are errors naming FILE:LINE (a test split should be clean).
Result<std::vector<ExactMatchItem>> LoadExactMatchItems(const std::string& path, const Tokenizer& tok,
                                                        ChatTemplateKind kind);
// Greedy generation of at most max_tokens per item (stopping at end of generation).
Result<ExactMatchResult> ExactMatch(Context& ctx, const std::vector<ExactMatchItem>& items, int max_tokens,
                                    const std::function<void(int64_t done, int64_t total)>& progress = {});

struct KlResult {
  double kl_sum = 0;  // sum over positions of KL(P_ref || P_model), nats
  int64_t n_positions = 0;
  int64_t top1_agree = 0;
  double MeanKl() const { return n_positions > 0 ? kl_sum / static_cast<double>(n_positions) : 0; }
};
// Both contexts evaluate the same token windows (the models must share the vocabulary).
Result<KlResult> KlDivergence(Context& model, Context& reference, const std::vector<TrainExample>& examples);

// Plain text -> one example per context-sized window of its tokens (all tokens scored), for perplexity and KL on
// a text file.
Result<std::vector<TrainExample>> TextWindows(const std::string& text, const Tokenizer& tok, int window);

}  // namespace pocketlm
