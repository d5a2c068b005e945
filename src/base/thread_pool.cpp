#include "base/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pocketlm {

namespace {

// How long an idle worker polls for the next region before it sleeps, and how long a caller polls for running
// chunks before it sleeps. The regions of a forward pass are separated by a few microseconds of single-threaded
// work (norms, RoPE); longer polling (or yielding while polling) made decoding several times slower on a machine
// oversubscribed by other processes: polling threads use up their share of the CPU and lose it to the others.
constexpr int64_t kSpinNs = 50'000;

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Polls `ready` for up to kSpinNs (the clock is read every 64 polls); true once it holds.
template <class F>
bool SpinUntil(F ready) {
  const int64_t t0 = NowNs();
  for (int i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0 && NowNs() - t0 > kSpinNs) return false;
    CpuRelax();
  }
}

constexpr uint32_t Generation(uint64_t state) {
  return static_cast<uint32_t>(state >> 32);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  live_workers_.fetch_add(static_cast<int>(workers_.size()), std::memory_order_relaxed);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
  live_workers_.fetch_sub(static_cast<int>(workers_.size()), std::memory_order_relaxed);
}

bool ThreadPool::RunOneChunk(uint32_t gen) {
  const auto parts = static_cast<uint64_t>(n_threads_);
  uint64_t s = state_.load(std::memory_order_acquire);
  do {
    if (Generation(s) != gen || (s & 0xFFFFFFFFu) >= parts) return false;
  } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire));
  // The chunk is ours: the caller stays in ParallelFor (job_ alive) until it is done.
  const size_t index = s & 0xFFFFFFFFu;
  const size_t begin = job_n_ * index / parts, end = job_n_ * (index + 1) / parts;
  if (begin < end) (*job_)(begin, end);
  if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_threads_) {
    std::lock_guard<std::mutex> lock(mu_);
    if (caller_waiting_) done_cv_.notify_one();
  }
  return true;
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t gen = ++generation_;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) start_cv_.notify_all();
  while (RunOneChunk(gen)) {
  }
  // Every chunk is claimed; wait for the ones other threads are still running.
  auto all_done = [&] { return done_.load(std::memory_order_acquire) == n_threads_; };
  if (!SpinUntil(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_waiting_ = true;
    done_cv_.wait(lock, all_done);
    caller_waiting_ = false;
  }
  job_ = nullptr;
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;
  for (;;) {
    auto has_work = [&] {
      return stop_.load(std::memory_order_acquire) || Generation(state_.load(std::memory_order_acquire)) != seen;
    };
    if (!SpinUntil(has_work)) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleepers_;
      start_cv_.wait(lock, has_work);
      --sleepers_;
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = Generation(state_.load(std::memory_order_acquire));
    while (RunOneChunk(seen)) {
    }
  }
}

}  // namespace pocketlm
