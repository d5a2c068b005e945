// One generation advanced a step at a time, so that a scheduler can interleave several: a step is one chunk of
// prompt (prefill) or one sampled and evaluated token. Produces the same tokens as model/generate.h's Generate
// for the same context, prompt and sampling (same sampler, same stop rules, same detokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/sampler.h"
#include "model/stop_matcher.h"
#include "serve/job.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm::serve {

class Sequence {
 public:
  // `ctx` holds the job's adapters and, in its first `n_cached` positions, the cache of the job's first n_cached
  // prompt tokens (a prefix reused from an earlier job: n_past == n_cached < prompt size); it stays borrowed until
  // Step returns true.
  Sequence(Context& ctx, GenerationJob job, int prefill_chunk, size_t n_cached = 0);

  // Advances by one step and reports text, completion or an error on the job's channel. True when finished
  // (done, failed or cancelled); the sequence must not be stepped again.
  bool Step();

  // The two halves of a decoding step, for a scheduler that evaluates many sequences' tokens in one batch
  // (Context::DecodeBatch). Only once the prompt is in (!prefilling()). Next samples the next token and reports
  // its text; true when the sequence finished (no token to evaluate). Otherwise *token must be evaluated in this
  // sequence's context and the resulting logits row (n_vocab values) handed to TakeLogits before the next step.
  bool prefilling() const { return n_prefilled_ < job_.prompt.size(); }
  bool Next(int32_t* token);
  void TakeLogits(const float* row);
  // Reports `s` on the job's channel; true (finished).
  bool Fail(const Status& s);

  Context& context() { return ctx_; }
  const GenerationJob& job() const { return job_; }

 private:
  bool Finish(FinishReason reason);
  void Emit(const std::string& text);

  Context& ctx_;
  GenerationJob job_;
  int prefill_chunk_;
  size_t n_cached_ = 0;
  size_t n_prefilled_ = 0;
  int n_generated_ = 0;
  std::vector<int32_t> history_;  // prompt + generated, for the repetition penalty
  std::vector<float> logits_;     // (n_vocab) after the last evaluated token
  Sampler sampler_;
  StreamingDetokenizer detok_;
  StopMatcher stop_;
};

}  // namespace pocketlm::serve
