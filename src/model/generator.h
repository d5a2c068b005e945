// The one generation loop, as an object advanced a step at a time: `pocketlm run` and the C API drive it to the end
// (model/generate.h), the server's scheduler interleaves many and evaluates their tokens in one batch.
//
// The rules every front end gets from here: sample; an end-of-generation token ends the reply unseen; otherwise the
// token counts, its text goes through the detokenizer and the stop strings (text that may start a stop string is
// held back, a found stop string ends the reply and is not shown); the reply also ends at max_tokens and when the
// context is full, and then the last token is not evaluated (a caller that continues the sequence evaluates it).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/context.h"
#include "model/sampler.h"
#include "model/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

struct GeneratorParams {
  int max_tokens = 128;  // new tokens at most; 0: only the prompt is evaluated
  SamplingParams sampling;
  bool stop_at_end_of_generation = true;
  std::vector<std::string> stop;  // stop strings (OpenAI's `stop`; a chat template's end of turn spelled as text)
  int prefill_chunk = 0;          // prompt tokens per prefill step; 0: the whole prompt in one step
};

enum class StopReason {
  kNone,             // not finished
  kEndOfGeneration,  // the model's end-of-generation token
  kStopString,       // one of GeneratorParams::stop
  kMaxTokens,
  kContextFull,
};

class Generator {
 public:
  // Validates the parameters and that the prompt fits. `ctx` is borrowed until the generator is done; the prompt
  // continues whatever it holds, and its last `n_cached` positions already hold prompt[0, n_cached) (a prefix
  // reused from an earlier request); the prefill steps evaluate the rest. The repetition penalty sees the prompt.
  static Result<Generator> Create(Context& ctx, std::vector<int32_t> prompt, const GeneratorParams& params,
                                  size_t n_cached = 0);

  // One prefill step: the next chunk of the prompt. Only while prefilling().
  bool prefilling() const { return n_prefilled_ < prompt_.size(); }
  Status Prefill();

  // Samples the next token once the prompt is in. Appends the text now safe to show to *text. True when the reply
  // has ended (reason() says why; no token to evaluate). Otherwise *token must be evaluated, by Decode or by a
  // batch (Context::DecodeBatch) whose logits row goes to TakeLogits, before the next call.
  bool Next(int32_t* token, std::string* text);
  Status Decode(int32_t token);
  void TakeLogits(const float* row);  // n_vocab values

  // The held-back text, once the reply has ended or when the caller ends it early; call once.
  std::string Finish();

  StopReason reason() const { return reason_; }
  int n_prompt() const { return static_cast<int>(prompt_.size()); }
  size_t n_cached() const { return n_cached_; }
  int n_generated() const { return static_cast<int>(generated_.size()); }
  const std::vector<int32_t>& generated() const { return generated_; }
  double prefill_seconds() const;
  double decode_seconds() const;  // from the end of the prefill to the last step

 private:
  Generator(Context& ctx, std::vector<int32_t> prompt, const GeneratorParams& params, size_t n_cached);
  bool End(StopReason r);

  Context* ctx_;
  GeneratorParams params_;
  std::vector<int32_t> prompt_;
  size_t n_cached_ = 0;
  size_t n_prefilled_ = 0;
  std::vector<int32_t> history_;  // prompt + generated, for the repetition penalty
  std::vector<int32_t> generated_;
  std::vector<float> logits_;  // (n_vocab) after the last evaluated token
  Sampler sampler_;
  StreamingDetokenizer detok_;
  StopMatcher stop_;
  StopReason reason_ = StopReason::kNone;
  std::chrono::steady_clock::time_point t_start_, t_prefilled_, t_last_;
};

}  // namespace pocketlm
