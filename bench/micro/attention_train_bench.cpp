// Training attention, forward and backward, on Qwen2-0.5B's attention shape (14 query heads, 2 KV heads, head_dim
// 64, no soft-cap, no window) over T = 256 and 512 tokens, with 2 threads (the new kernels also with 1); either one
// causal sequence or 4 packed documents of T / 4 tokens (seg_start). Two implementations in one binary so that before /
// after are measured in the same run on the same (shared, noisy) machine:
//   impl:0  grad::AttentionTrain*<float>, the scalar reference loops
//   impl:1  AttentionTrain* (the public float API)
//   ./attention_train_bench --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
// Time is wall-clock; CPU is the process's (both threads), steadier when other jobs share the machine.
// GFLOP/s counts 2 * head_dim flops per visible (query, key, head) triple per head_dim-long product: 2 products for
// the forward (scores, P V) and 5 for the backward (scores, dP, dQ, dK, dV), as FlashAttention counts them.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "ops/attention_train.h"

namespace pocketlm {
namespace {

constexpr int kHead = 14, kHeadKv = 2, kHeadDim = 64;

struct Data {
  AttentionParams p;
  int64_t T, kv_stride = static_cast<int64_t>(kHeadKv) * kHeadDim;
  std::vector<int32_t> seg;                                // (T) or empty
  std::vector<float> q, k, v, dout, out, lse, dq, dk, dv;  // q-shaped: (T, 14 * 64); kv-shaped: (T, 2 * 64)
  double visible_pairs = 0;                                // (query, key) pairs summed over query heads
  Data(int64_t t, bool packed) : T(t) {
    p.n_head = kHead;
    p.n_head_kv = kHeadKv;
    p.head_dim = kHeadDim;
    p.scale = 0.125f;
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& x, int64_t n) {
      x.resize(static_cast<size_t>(n));
      for (auto& e : x) e = g(rng);
    };
    const int64_t qn = T * kHead * kHeadDim, kvn = T * kv_stride;
    fill(q, qn), fill(k, kvn), fill(v, kvn), fill(dout, qn);
    out.resize(static_cast<size_t>(qn)), dq.resize(static_cast<size_t>(qn));
    lse.resize(static_cast<size_t>(T * kHead));
    dk.resize(static_cast<size_t>(kvn)), dv.resize(static_cast<size_t>(kvn));
    if (packed) {
      seg.resize(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) seg[static_cast<size_t>(i)] = static_cast<int32_t>(i / (T / 4) * (T / 4));
    }
    for (int64_t i = 0; i < T; ++i) visible_pairs += static_cast<double>(i - (packed ? seg[i] : 0) + 1) * kHead;
  }
  const int32_t* seg_start() const { return seg.empty() ? nullptr : seg.data(); }
};

// range(0): T, range(1): packed documents (0 / 1), range(2): impl (0 scalar reference, 1 public API), range(3): threads
void BM_Forward(benchmark::State& state) {
  Data d(state.range(0), state.range(1) != 0);
  ThreadPool pool(static_cast<int>(state.range(3)));
  for (auto _ : state) {
    if (state.range(2) == 0) {
      grad::AttentionTrainForward<float>(d.p, d.q.data(), d.k.data(), d.v.data(), d.kv_stride, d.T, d.seg_start(),
                                         d.out.data(), d.lse.data(), &pool);
    } else {
      AttentionTrainForward(d.p, d.q.data(), d.k.data(), d.v.data(), d.kv_stride, d.T, d.seg_start(), d.out.data(),
                            d.lse.data(), &pool);
    }
    benchmark::DoNotOptimize(d.out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(d.visible_pairs * 2 * 2 * kHeadDim * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Backward(benchmark::State& state) {
  Data d(state.range(0), state.range(1) != 0);
  ThreadPool pool(static_cast<int>(state.range(3)));
  AttentionTrainForward(d.p, d.q.data(), d.k.data(), d.v.data(), d.kv_stride, d.T, d.seg_start(), d.out.data(),
                        d.lse.data(), &pool);
  for (auto _ : state) {
    if (state.range(2) == 0) {
      grad::AttentionTrainBackward<float>(d.p, d.q.data(), d.k.data(), d.v.data(), d.kv_stride, d.T, d.seg_start(),
                                          d.out.data(), d.lse.data(), d.dout.data(), d.dq.data(), d.dk.data(),
                                          d.dv.data(), &pool);
    } else {
      AttentionTrainBackward(d.p, d.q.data(), d.k.data(), d.v.data(), d.kv_stride, d.T, d.seg_start(), d.out.data(),
                             d.lse.data(), d.dout.data(), d.dq.data(), d.dk.data(), d.dv.data(), &pool);
    }
    benchmark::DoNotOptimize(d.dq.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(d.visible_pairs * 5 * 2 * kHeadDim * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "packed", "impl", "threads"});
  for (int64_t t : {256, 512}) {
    for (int64_t packed : {0, 1}) {
      b->Args({t, packed, 0, 2});
      b->Args({t, packed, 1, 2});
      b->Args({t, packed, 1, 1});  // scaling of the new kernels
    }
  }
  b->UseRealTime()->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Forward)->Apply(Args);
BENCHMARK(BM_Backward)->Apply(Args);

}  // namespace
}  // namespace pocketlm

BENCHMARK_MAIN();
