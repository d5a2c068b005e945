// A persistent pool of worker threads. ParallelFor splits [0, n) into contiguous chunks, one per thread, and
// runs them with the calling thread taking part; it returns when every chunk is done. A pool lives as long as the
// contexts that use it (never one per op); contexts that never evaluate at the same time share one (a server's
// sequences, a merge's measurement), so idle workers do not pile up.
//
// Decoding a token runs ~200 short parallel regions (one per matmul, ~20-200 us each), so the hand-off costs
// matter:
//  - Chunks are claimed, not assigned: whoever is ready (the caller first) takes the next unclaimed chunk, and the
//    caller waits only for chunks that are running, never for a worker to wake up. On a shared machine a worker
//    that is descheduled (or still waking) simply gets nothing, instead of holding up the region.
//  - Idle workers poll for the next region for a short while (kSpinNs in thread_pool.cpp) before they sleep on a
//    condition variable, as ggml's thread pool polls (ggml-cpu.c, ggml_graph_compute_poll_for_work), so that
//    back-to-back regions need no futex wake-up.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pocketlm {

class ThreadPool {
 public:
  // `n_threads` counts the caller: 1 means no worker threads at all.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Worker threads of all pools alive in this process (for tests of who shares a pool).
  static int LiveWorkers() { return live_workers_.load(std::memory_order_relaxed); }

  // fn(begin, end) over a partition of [0, n) into size() chunks as even as possible (empty chunks are skipped),
  // each run by one of the threads.
  void ParallelFor(size_t n, const std::function<void(size_t begin, size_t end)>& fn);

 private:
  void WorkerLoop();
  // Claims and runs one chunk of region `gen`; false when it has no unclaimed chunk left (or is over).
  bool RunOneChunk(uint32_t gen);

  static inline std::atomic<int> live_workers_{0};
  int n_threads_;
  std::vector<std::thread> workers_;
  // The current region; written by the caller before it publishes the region in state_ (release).
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t job_n_ = 0;
  uint32_t generation_ = 0;         // caller only
  std::atomic<uint64_t> state_{0};  // (region generation << 32) | next chunk to claim
  std::atomic<int> done_{0};        // chunks finished in the current region
  std::atomic<bool> stop_{false};
  // Sleeping workers wait on start_cv_, a caller waiting for running chunks on done_cv_. state_ and stop_ change
  // under mu_ so that no wake-up is lost.
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  int sleepers_ = 0;             // guarded by mu_
  bool caller_waiting_ = false;  // guarded by mu_
};

}  // namespace pocketlm
