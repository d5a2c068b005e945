#include "serve/sequence.h"

#include <algorithm>
#include <span>

namespace pocketlm::serve {

Sequence::Sequence(Context& ctx, GenerationJob job, int prefill_chunk, size_t n_cached)
    : ctx_(ctx),
      job_(std::move(job)),
      prefill_chunk_(std::max(1, prefill_chunk)),
      n_cached_(n_cached),
      n_prefilled_(n_cached),
      history_(job_.prompt),
      sampler_(job_.sampling),
      detok_(ctx.model().tokenizer(), /*at_sequence_start=*/false),  // continues after the prompt
      stop_(job_.stop) {}

bool Sequence::Step() {
  if (job_.channel->cancelled()) return true;
  const std::vector<int32_t>& prompt = job_.prompt;
  if (n_prefilled_ < prompt.size()) {
    const size_t n = std::min(prompt.size() - n_prefilled_, static_cast<size_t>(prefill_chunk_));
    Status s = ctx_.Eval(std::span<const int32_t>(prompt.data() + n_prefilled_, n), /*all_logits=*/false, &logits_);
    if (!s.ok()) return Fail(s);
    n_prefilled_ += n;
    return false;
  }
  int32_t next = 0;
  if (Next(&next)) return true;
  Status s = ctx_.Eval(std::span<const int32_t>(&next, 1), /*all_logits=*/false, &logits_);
  if (!s.ok()) return Fail(s);
  return false;
}

bool Sequence::Next(int32_t* token) {
  if (job_.channel->cancelled()) return true;
  // The same order as Generate: sample, stop on end-of-generation, emit, then evaluate unless at a limit.
  const int32_t next = sampler_.Sample(logits_, history_);
  if (ctx_.model().tokenizer().IsEndOfGeneration(next)) return Finish(FinishReason::kStop);
  history_.push_back(next);
  ++n_generated_;
  Emit(detok_.Push(next));
  if (stop_.stopped()) return Finish(FinishReason::kStop);
  if (n_generated_ >= job_.max_tokens || ctx_.n_past() >= ctx_.n_ctx()) return Finish(FinishReason::kLength);
  *token = next;
  return false;
}

void Sequence::TakeLogits(const float* row) {
  logits_.assign(row, row + ctx_.model().config().n_vocab);
}

void Sequence::Emit(const std::string& text) {
  if (text.empty()) return;
  std::string out = stop_.Push(text);
  if (!out.empty()) job_.channel->Push(JobEvent{JobEvent::kText, std::move(out)});
}

bool Sequence::Finish(FinishReason reason) {
  if (!stop_.stopped()) {
    Emit(detok_.Flush());
    std::string tail = stop_.Flush();
    if (!tail.empty()) job_.channel->Push(JobEvent{JobEvent::kText, std::move(tail)});
  }
  JobEvent done;
  done.kind = JobEvent::kDone;
  done.finish = stop_.stopped() ? FinishReason::kStop : reason;
  done.n_prompt = static_cast<int>(job_.prompt.size());
  done.n_generated = n_generated_;
  done.n_cached = static_cast<int>(n_cached_);
  job_.channel->Push(std::move(done));
  return true;
}

bool Sequence::Fail(const Status& s) {
  JobEvent e;
  e.kind = JobEvent::kError;
  e.error = s;
  job_.channel->Push(std::move(e));
  return true;
}

}  // namespace pocketlm::serve
