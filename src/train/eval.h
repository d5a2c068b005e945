// Quality measurements of a model (optionally with adapters, set on the Context passed in):
//   perplexity of text or of the trainable tokens of a JSONL dataset,
//   exact-match accuracy of greedy answers on a chat/completion test split,
//   KL divergence from a reference model on the same text (how much quantization or an adapter moved it): on
//   plain text llama-perplexity --kl-divergence's chunks and statistics (train/kl_stats.h), on a dataset the mean
//   over its examples' tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/context.h"
#include "tokenizer/chat_template.h"
#include "train/data/dataset.h"
#include "train/kl_stats.h"

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

// llama-perplexity's chunks (perplexity.cpp perplexity() and kl_divergence() at llama.cpp c392e50): the text is
// tokenized once (BOS as the vocabulary says), cut into n_chunks = min(max_chunks, n_tokens / n_ctx) chunks of n_ctx
// tokens (the rest is unused), each evaluated from an empty cache with its first token replaced by BOS when the
// model adds one; in each chunk the logits at positions first = n_ctx / 2 .. n_ctx - 2 are scored against the
// following token: n_ctx - 1 - first positions per chunk.
struct KlChunks {
  int n_ctx = 0, first = 0, n_chunks = 0;
  int64_t n_tokens = 0;
  int rows_per_eval = 0;  // scored positions evaluated at once per model (0: ~16M logits, 64 MB)
  int ScoredPerChunk() const { return n_ctx - 1 - first; }
  int64_t ScoredTotal() const { return static_cast<int64_t>(n_chunks) * ScoredPerChunk(); }
};
// max_chunks <= 0: every whole chunk. Errors (one line): n_ctx < 3 (nothing to score), text shorter than one chunk
// (naming its token count and the largest --ctx that fits).
Result<KlChunks> PlanKlChunks(int64_t n_tokens, int n_ctx, int max_chunks);

// KL divergence of `model` from `reference` on `tokens` chunked as llama-perplexity --kl-divergence does (both
// contexts hold at least n_ctx positions; at most rows_per_eval positions' logits of each model are held at a time,
// and one float per scored position for the percentiles). progress is called after each chunk with the statistics
// so far.
Result<KlStats> KlDivergenceChunked(Context& model, Context& reference, const std::vector<int32_t>& tokens,
                                    const KlChunks& chunks, KlBaseRounding rounding,
                                    const std::function<void(int done, int total, const KlStats&)>& progress = {});

// Plain text -> one example per context-sized window of its tokens (all tokens scored), for perplexity and KL on
// a text file.
Result<std::vector<TrainExample>> TextWindows(const std::string& text, const Tokenizer& tok, int window);

}  // namespace pocketlm
