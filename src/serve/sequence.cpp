#include "serve/sequence.h"

#include <algorithm>
#include <utility>

namespace pocketlm::serve {

namespace {

GeneratorParams ParamsOf(const GenerationJob& job, int prefill_chunk) {
  GeneratorParams p;
  p.max_tokens = job.max_tokens;
  p.sampling = job.sampling;
  p.stop = job.stop;
  p.prefill_chunk = std::max(1, prefill_chunk);
  return p;
}

}  // namespace

Sequence::Sequence(Context& ctx, GenerationJob job, int prefill_chunk, size_t n_cached)
    : ctx_(ctx), job_(std::move(job)) {
  Result<Generator> g = Generator::Create(ctx, job_.prompt, ParamsOf(job_, prefill_chunk), n_cached);
  if (g.ok()) {
    gen_.emplace(std::move(g).value());
  } else {
    create_error_ = g.status();
  }
}

bool Sequence::Step() {
  if (!gen_) return Fail(create_error_);
  if (job_.channel->cancelled()) return true;
  if (gen_->prefilling()) {
    if (Status s = gen_->Prefill(); !s.ok()) return Fail(s);
    return false;
  }
  int32_t next = 0;
  if (Next(&next)) return true;
  if (Status s = gen_->Decode(next); !s.ok()) return Fail(s);
  return false;
}

bool Sequence::Next(int32_t* token) {
  if (!gen_) return Fail(create_error_);
  if (job_.channel->cancelled()) return true;
  std::string text;
  const bool done = gen_->Next(token, &text);
  Emit(std::move(text));
  return done ? Finish() : false;
}

void Sequence::Emit(std::string text) {
  if (!text.empty()) job_.channel->Push(JobEvent{JobEvent::kText, std::move(text)});
}

bool Sequence::Finish() {
  Emit(gen_->Finish());
  JobEvent done;
  done.kind = JobEvent::kDone;
  const StopReason r = gen_->reason();
  done.finish =
      r == StopReason::kMaxTokens || r == StopReason::kContextFull ? FinishReason::kLength : FinishReason::kStop;
  done.n_prompt = gen_->n_prompt();
  done.n_generated = gen_->n_generated();
  done.n_cached = static_cast<int>(gen_->n_cached());
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
