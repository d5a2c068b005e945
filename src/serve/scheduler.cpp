#include "serve/scheduler.h"

#include <algorithm>
#include <exception>

namespace pocketlm::serve {

Result<std::unique_ptr<Scheduler>> Scheduler::Create(const Model& model, const SchedulerOptions& opts) {
  if (opts.parallel < 1 || opts.parallel > 256) return InvalidArgument("parallel sequences must be 1..256");
  if (opts.max_queue < 0) return InvalidArgument("the queue length must be >= 0");
  std::vector<Slot> slots(static_cast<size_t>(opts.parallel));
  // One pool for every slot: the scheduler thread steps them one after another (and a batch on the first one's).
  ContextParams cp = opts.context;
  if (!cp.pool) {
    if (cp.n_threads < 1 || cp.n_threads > 512) return InvalidArgument("thread count must be 1..512");
    cp.pool = std::make_shared<ThreadPool>(cp.n_threads);
  }
  for (Slot& s : slots) {
    PLM_ASSIGN_OR_RETURN(s.ctx, Context::Create(model, cp));
  }
  return std::unique_ptr<Scheduler>(new Scheduler(opts, std::move(slots)));
}

Scheduler::Scheduler(SchedulerOptions opts, std::vector<Slot> slots)
    : opts_(std::move(opts)), n_ctx_(slots.front().ctx->n_ctx()), slots_(std::move(slots)) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  Stop();
}

Scheduler::SubmitResult Scheduler::Submit(GenerationJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return SubmitResult::kShuttingDown;
    // A job that a free slot takes at once does not count against the queue.
    const int free_slots = opts_.parallel - n_active_;
    if (static_cast<int>(queue_.size()) >= opts_.max_queue + std::max(0, free_slots)) return SubmitResult::kQueueFull;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return SubmitResult::kQueued;
}

void Scheduler::BeginShutdown() {
  std::deque<GenerationJob> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_one();
  for (GenerationJob& job : dropped) {
    JobEvent e;
    e.kind = JobEvent::kError;
    e.error = Unavailable("the server is shutting down");
    job.channel->Push(std::move(e));
  }
}

void Scheduler::CancelActive() {
  BeginShutdown();
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_active_ = true;
  }
  cv_.notify_one();
}

void Scheduler::Stop() {
  BeginShutdown();
  if (thread_.joinable()) thread_.join();
}

Scheduler::Load Scheduler::load() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Load{n_active_, static_cast<int>(queue_.size())};
}

bool Scheduler::Admit(Slot& slot, GenerationJob job) {
  if (slot.adapters != job.adapters) {
    std::vector<ActiveLora> active;
    active.reserve(job.adapters.size());
    for (const ScaledAdapter& a : job.adapters) active.push_back({a.adapter.get(), a.scale});
    if (Status s = slot.ctx->SetAdapters(active); !s.ok()) {  // also empties the cache
      JobEvent e;
      e.kind = JobEvent::kError;
      e.error = s;
      job.channel->Push(std::move(e));
      // SetAdapters may have failed half-way: the slot no longer has a known set.
      (void)slot.ctx->SetAdapters({});
      slot.adapters.clear();
      slot.cached.clear();
      return false;
    }
    slot.adapters = job.adapters;
    slot.cached.clear();  // SetAdapters emptied the cache
  }
  const size_t reuse = Reusable(slot, job);
  slot.ctx->TruncateTo(static_cast<int>(reuse));
  slot.cached.resize(reuse);
  slot.seq = std::make_unique<Sequence>(*slot.ctx, std::move(job), /*prefill_chunk=*/opts_.context.n_batch, reuse);
  return true;
}

size_t Scheduler::Reusable(const Slot& slot, const GenerationJob& job) {
  if (slot.adapters != job.adapters) return 0;
  const size_t n = std::min(slot.cached.size(), job.prompt.size());
  size_t common = 0;
  while (common < n && slot.cached[common] == job.prompt[common]) ++common;
  // The last prompt token is always evaluated again: its logits start the generation.
  return std::min(common, job.prompt.size() - 1);
}

void Scheduler::EndSequence(Slot& slot) {
  if (slot.seq != nullptr) {
    const std::vector<int32_t>& prompt = slot.seq->job().prompt;
    const size_t held = std::min(prompt.size(), static_cast<size_t>(std::max(0, slot.ctx->n_past())));
    slot.cached.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(held));
  }
  slot.seq.reset();
}

void Scheduler::Loop() {
  for (;;) {
    // Admit waiting jobs into free slots, or sleep when there is nothing to do.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return n_active_ > 0 || !queue_.empty() || stopping_; });
      if (n_active_ == 0 && queue_.empty() && stopping_) return;
      if (cancel_active_) {
        for (Slot& slot : slots_) {
          if (slot.seq == nullptr) continue;
          JobEvent e;
          e.kind = JobEvent::kError;
          e.error = Unavailable("cancelled: the server is shutting down");
          slot.seq->job().channel->Push(std::move(e));
          slot.seq.reset();
          --n_active_;
        }
        continue;
      }
      while (!queue_.empty()) {
        // The free slot that can reuse the most of this job's prompt (the first free one when none can).
        Slot* best = nullptr;
        size_t best_reuse = 0;
        for (Slot& slot : slots_) {
          if (slot.seq != nullptr) continue;
          const size_t r = Reusable(slot, queue_.front());
          if (best == nullptr || r > best_reuse) best = &slot, best_reuse = r;
        }
        if (best == nullptr) break;
        GenerationJob job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();  // SetAdapters checks the adapter against the base: not under the lock
        const bool admitted = Admit(*best, std::move(job));
        lock.lock();
        if (admitted) ++n_active_;
      }
    }
    // One step for every active sequence: a prompt chunk for those still prefilling, and one token for all the
    // others together, in one batch (each row with its own slot's cache and adapters).
    int finished = 0;
    const auto fail = [&](Slot& slot, const Status& why) {  // the request fails; the server keeps serving
      slot.seq->Fail(why);
      slot.ctx->Reset();
      slot.cached.clear();
      slot.seq.reset();
      ++finished;
    };
    std::vector<Slot*> batch;
    std::vector<Context*> batch_ctx;
    std::vector<int32_t> batch_tokens;
    for (Slot& slot : slots_) {
      if (slot.seq == nullptr) continue;
      bool done = true;
      int32_t token = 0;
      try {
        if (slot.seq->prefilling()) {
          done = slot.seq->Step();
        } else if (!(done = slot.seq->Next(&token))) {
          batch.push_back(&slot);
          batch_ctx.push_back(slot.ctx.get());
          batch_tokens.push_back(token);
        }
      } catch (const std::exception& ex) {
        fail(slot, Internal(std::string("internal error: ") + ex.what()));
        continue;
      }
      if (done) {
        EndSequence(slot);
        ++finished;
      }
    }
    if (!batch.empty()) {
      Status st;
      try {
        st = batch_ctx.front()->DecodeBatch(batch_ctx, batch_tokens, &batch_logits_);
      } catch (const std::exception& ex) {
        st = Internal(std::string("internal error: ") + ex.what());
      }
      const auto n_vocab = static_cast<size_t>(batch_ctx.front()->model().config().n_vocab);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (st.ok()) {
          batch[i]->seq->TakeLogits(batch_logits_.data() + i * n_vocab);
        } else {
          fail(*batch[i], st);
        }
      }
    }
    if (finished > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      n_active_ -= finished;
    }
  }
}

}  // namespace pocketlm::serve
