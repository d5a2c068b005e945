// ThreadPool::ParallelFor must cover [0, n) exactly once, with any pool size, call after call.
#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace pocketlm {
namespace {

// Runs ParallelFor(n) and checks every index was visited exactly once by chunks that lie inside [0, n).
void ExpectExactCover(ThreadPool& pool, size_t n) {
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int> bad_chunks{0};
  pool.ParallelFor(n, [&](size_t begin, size_t end) {
    if (begin >= end || end > n) {
      bad_chunks.fetch_add(1);
      return;
    }
    for (size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
  });
  EXPECT_EQ(bad_chunks.load(), 0) << "n=" << n << " threads=" << pool.size();
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(hits[i].load(), 1) << "index " << i << " n=" << n << " threads=" << pool.size();
}

TEST(ThreadPoolTest, CoversRangeExactlyOnce) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (size_t n : {0, 1, 2, 3, 7, 1000}) ExpectExactCover(pool, n);
  }
}

TEST(ThreadPoolTest, ZeroDoesNotCallTheFunction) {
  ThreadPool pool(3);
  int calls = 0;
  pool.ParallelFor(0, [&](size_t, size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPoolTest, ReusableManyTimes) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int iter = 0; iter < 2000; ++iter) {
      const size_t n = static_cast<size_t>(iter % 13);
      std::atomic<size_t> sum{0};
      pool.ParallelFor(n, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) sum.fetch_add(i + 1);
      });
      ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "iteration " << iter << " threads " << threads;
    }
  }
}

TEST(ThreadPoolTest, UsesWorkerThreadsAndChunksAreContiguous) {
  ThreadPool pool(4);
  std::atomic<int> chunks{0};
  pool.ParallelFor(1000, [&](size_t b, size_t e) {
    EXPECT_LT(b, e);
    chunks.fetch_add(1);
  });
  EXPECT_EQ(chunks.load(), 4);  // one even chunk per thread
}

TEST(ThreadPoolTest, NonPositiveSizeMeansCallerOnly) {
  for (int threads : {0, -3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), 1);
    ExpectExactCover(pool, 10);
  }
}

// More threads than cores, back-to-back regions: workers that are still waking up (or polling) when the caller has
// run every chunk itself must not run a chunk of a later region twice or touch a finished one.
TEST(ThreadPoolTest, OversubscribedBackToBackRegions) {
  const int threads = 3 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(threads);
  for (int iter = 0; iter < 3000; ++iter) {
    const size_t n = static_cast<size_t>(1 + iter % 29);
    std::atomic<size_t> sum{0};
    pool.ParallelFor(n, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) sum.fetch_add(i + 1);
    });
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "iteration " << iter;
  }
}

// A pool idle long enough for its workers to go to sleep still runs the next region completely.
TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int iter = 0; iter < 3; ++iter) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ExpectExactCover(pool, 100);
  }
}

TEST(ThreadPoolTest, CreateAndDestroyRepeatedly) {
  for (int i = 0; i < 50; ++i) {
    auto pool = std::make_unique<ThreadPool>(1 + i % 4);
    ExpectExactCover(*pool, static_cast<size_t>(i));
  }
}

}  // namespace
}  // namespace pocketlm
