// One generation advanced a step at a time, so that a scheduler can interleave several: a step is one chunk of
// prompt (prefill) or one sampled and evaluated token. Produces the same tokens as model/generate.h's Generate
// for the same context, prompt and sampling (same sampler, same stop rules, same detokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/sampler.h"
#include "serve/job.h"
#include "serve/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm::serve {

class Sequence {
 public:
  // `ctx` must be empty (n_past 0) with the job's adapters active; it stays borrowed until Step returns true.
  Sequence(Context& ctx, GenerationJob job, int prefill_chunk);

  // Advances by one step and reports text, completion or an error on the job's channel. True when finished
  // (done, failed or cancelled); the sequence must not be stepped again.
  bool Step();
  const GenerationJob& job() const { return job_; }

 private:
  bool Finish(FinishReason reason);
  bool Fail(const Status& s);
  void Emit(const std::string& text);

  Context& ctx_;
  GenerationJob job_;
  int prefill_chunk_;
  size_t n_prefilled_ = 0;
  int n_generated_ = 0;
  std::vector<int32_t> history_;  // prompt + generated, for the repetition penalty
  std::vector<float> logits_;     // (n_vocab) after the last evaluated token
  Sampler sampler_;
  StreamingDetokenizer detok_;
  StopMatcher stop_;
};

}  // namespace pocketlm::serve
