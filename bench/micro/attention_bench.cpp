// AttentionForward for one decoded token (Qwen2-0.5B's heads: 14 query heads, 2 KV heads, head size 64) over a
// KV cache of state.range(0) positions, on the calling thread: the decode step's attention, per layer.
//   build/release/bench/micro/attention_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/attention.h"

namespace pocketlm {
namespace {

void BM_DecodeAttention(benchmark::State& state) {
  const int64_t n_pos = state.range(0);
  AttentionParams p;
  p.n_head = 14;
  p.n_head_kv = 2;
  p.head_dim = 64;
  p.scale = 0.125f;
  const int64_t kv_stride = p.n_head_kv * p.head_dim;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(p.n_head * p.head_dim)), k(static_cast<size_t>(n_pos * kv_stride)),
      v(k.size()), out(q.size());
  for (auto* vec : {&q, &k, &v}) {
    for (auto& x : *vec) x = u(rng);
  }
  std::vector<uint16_t> kh(k.size()), vh(v.size());  // the cache is f16
  F32ToF16Row(k.data(), static_cast<int64_t>(k.size()), kh.data());
  F32ToF16Row(v.data(), static_cast<int64_t>(v.size()), vh.data());
  for (auto _ : state) {
    AttentionForward(p, q.data(), 1, n_pos - 1, kh.data(), vh.data(), kv_stride, out.data(), nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  // q.k and the weighted sum: 2 x 2 flops per (head, position, dim)
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * p.n_head * n_pos * p.head_dim * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeAttention)->Arg(64)->Arg(300)->Arg(1024)->Arg(4096);

}  // namespace
}  // namespace pocketlm
BENCHMARK_MAIN();
