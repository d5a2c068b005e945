// A generation request as the scheduler sees it (already tokenized and resolved to adapters), and the channel
// through which the scheduler thread streams its results back to the HTTP handler thread that waits for them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/sampler.h"
#include "serve/adapter_registry.h"

namespace pocketlm::serve {

// OpenAI's finish_reason values that pocketlm produces: "stop" (end-of-generation token or a stop sequence),
// "length" (max_tokens reached or the context is full).
enum class FinishReason { kStop, kLength };
const char* FinishReasonName(FinishReason r);

struct JobEvent {
  enum Kind { kText, kDone, kError };
  Kind kind = kText;
  std::string text;                           // kText
  FinishReason finish = FinishReason::kStop;  // kDone
  int n_prompt = 0, n_generated = 0;          // kDone: usage
  int n_cached = 0;                           // kDone: prompt tokens whose cache entries were reused
  Status error;                               // kError (its code decides the HTTP status: ErrorFromStatus)
};

// One producer (the scheduler), one consumer (the handler). Cancel() is the consumer telling the producer that
// nobody listens any more (the client went away); the scheduler then drops the sequence at its next step.
class JobChannel {
 public:
  void Push(JobEvent e);
  // Moves the pending events into *out, waiting up to `timeout` for the first. False on timeout.
  bool Wait(std::vector<JobEvent>* out, std::chrono::milliseconds timeout);
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;  // guarded by mu_
  std::atomic<bool> cancelled_{false};
};

struct GenerationJob {
  std::vector<int32_t> prompt;  // (n_prompt) token ids, BOS included when the vocabulary asks for it
  AdapterSet adapters;          // keeps every adapter alive until the job ends
  SamplingParams sampling;
  int max_tokens = 1;
  std::vector<std::string> stop;
  std::shared_ptr<JobChannel> channel;
};

}  // namespace pocketlm::serve
