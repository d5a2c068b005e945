// One request's generation in the scheduler: the generation loop (model/generator.h) with the request's channel,
// so that text, the end and errors reach the HTTP handler that waits for them, and a client that went away stops
// it at the next step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/generator.h"
#include "serve/job.h"

namespace pocketlm::serve {

class Sequence {
 public:
  // `ctx` holds the job's adapters and, in its first `n_cached` positions, the cache of the job's first n_cached
  // prompt tokens (a prefix reused from an earlier job: n_past == n_cached < prompt size); it stays borrowed until
  // Step returns true.
  Sequence(Context& ctx, GenerationJob job, int prefill_chunk, size_t n_cached = 0);

  // Advances by one step (a chunk of prompt, or one sampled and evaluated token) and reports text, completion or an
  // error on the job's channel. True when finished (done, failed or cancelled); the sequence must not be stepped
  // again.
  bool Step();

  // The two halves of a decoding step, for a scheduler that evaluates many sequences' tokens in one batch
  // (Context::DecodeBatch). Only once the prompt is in (!prefilling()). Next samples the next token and reports
  // its text; true when the sequence finished (no token to evaluate). Otherwise *token must be evaluated in this
  // sequence's context and the resulting logits row (n_vocab values) handed to TakeLogits before the next step.
  bool prefilling() const { return gen_.has_value() && gen_->prefilling(); }
  bool Next(int32_t* token);
  void TakeLogits(const float* row) { gen_->TakeLogits(row); }
  // Reports `s` on the job's channel; true (finished).
  bool Fail(const Status& s);

  Context& context() { return ctx_; }
  const GenerationJob& job() const { return job_; }

 private:
  bool Finish();
  void Emit(std::string text);

  Context& ctx_;
  GenerationJob job_;
  std::optional<Generator> gen_;  // empty when the job's parameters were refused (reported by the first Step)
  Status create_error_;
};

}  // namespace pocketlm::serve
