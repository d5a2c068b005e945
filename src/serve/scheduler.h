// The one thread that owns the engine. Requests wait in a bounded FIFO queue; up to `parallel` of them are
// active at once, each in its own slot (a Context: KV cache, scratch, adapter set). Every round the scheduler
// advances each active sequence by one step, so a long generation never blocks a short one and a new request
// starts within one round (continuous batching): sequences still reading their prompt evaluate one prompt chunk
// each; all the others decode their next token together in one Context::DecodeBatch, which reads every weight
// matrix once for the whole batch and adds each row's own adapter terms.
//
// Prefix cache: a slot keeps the cache of its last prompt. A new job goes to the free slot whose last prompt
// shares the longest prefix with its own under the same adapter set (adapters and scales), and evaluates only the
// rest of its prompt. A cache is never reused under another adapter set: a job whose set differs from the slot's
// calls Context::SetAdapters, which clears the cache.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "serve/job.h"
#include "serve/sequence.h"

namespace pocketlm::serve {

struct SchedulerOptions {
  int parallel = 4;       // active sequences (slots), each with its own context
  int max_queue = 64;     // waiting jobs beyond the active ones; Submit refuses more
  ContextParams context;  // per slot
};

class Scheduler {
 public:
  // Creates the slots' contexts (so memory is claimed up front) and starts the thread.
  static Result<std::unique_ptr<Scheduler>> Create(const Model& model, const SchedulerOptions& opts);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class SubmitResult { kQueued, kQueueFull, kShuttingDown };
  SubmitResult Submit(GenerationJob job);

  // Refuses new jobs and fails the queued ones (their handlers report 503); active sequences run to their end.
  void BeginShutdown();
  // Ends every active sequence now with an error event ("cancelled"): the second stage of a shutdown.
  void CancelActive();
  // BeginShutdown, then waits for the active sequences and joins the thread. Idempotent.
  void Stop();

  int n_ctx() const { return n_ctx_; }
  struct Load {
    int active = 0, queued = 0;
  };
  Load load() const;

 private:
  struct Slot {
    std::unique_ptr<Context> ctx;
    AdapterSet adapters;  // what ctx has active; keeps those adapters alive while ctx points into them
    std::unique_ptr<Sequence> seq;
    std::vector<int32_t> cached;  // the prompt tokens whose entries ctx's cache holds, from position 0
  };
  Scheduler(SchedulerOptions opts, std::vector<Slot> slots);
  void Loop();
  // Starts `job` in `slot`; false (and the job failed on its channel) when its adapters cannot be activated.
  bool Admit(Slot& slot, GenerationJob job);
  // Prompt tokens of `job` that `slot` could serve from its cache (0 under another adapter set).
  static size_t Reusable(const Slot& slot, const GenerationJob& job);
  // Ends the slot's sequence, remembering which prompt prefix its cache still holds.
  static void EndSequence(Slot& slot);

  const SchedulerOptions opts_;
  int n_ctx_ = 0;
  std::vector<Slot> slots_;          // scheduler thread only
  std::vector<float> batch_logits_;  // scheduler thread only: (batch, n_vocab)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationJob> queue_;  // guarded by mu_
  int n_active_ = 0;                 // guarded by mu_ (for load())
  bool stopping_ = false;            // guarded by mu_
  bool cancel_active_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace pocketlm::serve
