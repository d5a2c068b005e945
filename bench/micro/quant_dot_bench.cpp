// Quantized matmul, single thread: QuantizeActivations + QuantMatMulRows (integer dot products on the packed
// blocks) against dequantize-to-f32 + f32 dot per row (the path MatMulWeightsT took before quant_dot). Shapes of
// Qwen2-0.5B's MLP down/up projection (4864 x 896); tokens 1 (decode) and 64 (prefill).
//   ./quant_dot_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/matmul.h"
#include "ops/quant_dot.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

namespace pocketlm {
namespace {

constexpr int64_t kNOut = 4864;
constexpr int64_t kNIn = 896;

struct Data {
  std::vector<uint8_t> w;
  std::vector<float> x, y;
  TensorView view;
  Data(DType t, int64_t n_in, int64_t n_out, int64_t n_tokens) {
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(n_in));
    const auto& tr = quant::GetQuantTraits(t);
    const size_t rb = static_cast<size_t>(n_in) / GetDTypeInfo(tr.type).block_size * GetDTypeInfo(tr.type).type_size;
    w.resize(rb * static_cast<size_t>(n_out));
    for (int64_t r = 0; r < n_out; ++r) {
      for (auto& v : row) v = g(rng);
      tr.quantize_row(row.data(), w.data() + static_cast<size_t>(r) * rb, n_in);
    }
    x.resize(static_cast<size_t>(n_in * n_tokens));
    for (auto& v : x) v = g(rng);
    y.resize(static_cast<size_t>(n_out * n_tokens));
    view.type = t;
    view.ne[0] = n_in;
    view.ne[1] = n_out;
    view.data = w.data();
    view.nbytes = w.size();
  }
};

void BM_QuantDot(benchmark::State& state, DType t) {
  const int64_t n_tokens = state.range(0);
  Data d(t, kNIn, kNOut, n_tokens);
  const size_t arb = ActivationRowBytes(t, kNIn);
  std::vector<uint8_t> act(arb * static_cast<size_t>(n_tokens));
  for (auto _ : state) {
    QuantizeActivations(t, d.x.data(), n_tokens, kNIn, act.data());
    QuantMatMulRows(t, d.w.data(), d.view.row_bytes(), kNIn, act.data(), arb, n_tokens, d.y.data(), kNOut, false, 0,
                    kNOut);
    benchmark::DoNotOptimize(d.y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(d.w.size()));
}

// The f32 path: each weight row dequantized to f32 (bit-exact scalar decoder), then the SIMD f32 dot product of
// MatMulWeightsT on that one row, reused for every token.
void BM_DequantF32(benchmark::State& state, DType t) {
  const int64_t n_tokens = state.range(0);
  Data d(t, kNIn, kNOut, n_tokens);
  const auto& tr = quant::GetQuantTraits(t);
  std::vector<float> row(static_cast<size_t>(kNIn));
  TensorView rv;
  rv.type = DType::kF32;
  rv.ne[0] = kNIn;
  rv.ne[1] = 1;
  rv.data = reinterpret_cast<const uint8_t*>(row.data());
  rv.nbytes = row.size() * sizeof(float);
  for (auto _ : state) {
    for (int64_t r = 0; r < kNOut; ++r) {
      tr.dequantize_row(d.view.row(r), row.data(), kNIn);
      MatMulWeightsT(rv, d.x.data(), n_tokens, d.y.data() + r, kNOut, false, nullptr);
    }
    benchmark::DoNotOptimize(d.y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(d.w.size()));
}

// Decode (one token) on rows interleaved 16 at a time (tensor/quant/interleave.h; what inference loads on AVX-512):
// n_out = 896 rows of 896 (1024 for the k-quants; 0.3-0.9 MB: cache-resident), so bytes/s is the kernel's compute
// ceiling, to compare with the ~16 GB/s one core streams from DRAM (`OMP_NUM_THREADS=1 readbw`).
void BM_InterleavedDecode(benchmark::State& state, DType t) {
  constexpr int64_t kRows = 896;
  const bool k_quant = t == DType::kQ4_K || t == DType::kQ6_K;
  const int64_t n_in = k_quant ? 1024 : kNIn;  // k-quant rows are whole blocks of 256
  Data d(t, n_in, kRows, 1);
  if (!InterleavedIsFaster(t)) {
    state.SkipWithError("no interleaved kernel for this type on this CPU");
    return;
  }
  quant::InterleaveRows(t, d.w.data(), d.view.row_bytes(), kRows);
  const size_t arb = ActivationRowBytes(t, n_in);
  std::vector<uint8_t> act(arb);
  QuantizeActivations(t, d.x.data(), 1, n_in, act.data());
  QuantActs prepared;
  PrepareQuantActs(t, act.data(), arb, 1, n_in, &prepared);
  for (auto _ : state) {
    QuantMatMulRowsInterleaved(prepared, d.w.data(), d.view.row_bytes(), kRows, d.y.data(), kRows, false, 0, kRows);
    benchmark::DoNotOptimize(d.y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(d.w.size()));
}
BENCHMARK_CAPTURE(BM_InterleavedDecode, kQ4_0, DType::kQ4_0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_InterleavedDecode, kQ5_0, DType::kQ5_0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_InterleavedDecode, kQ8_0, DType::kQ8_0)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_InterleavedDecode, kQ4_K, DType::kQ4_K)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_InterleavedDecode, kQ6_K, DType::kQ6_K)->Unit(benchmark::kMicrosecond);

#define PLM_QD_BENCH(T)                                                                        \
  BENCHMARK_CAPTURE(BM_QuantDot, T, DType::T)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond); \
  BENCHMARK_CAPTURE(BM_DequantF32, T, DType::T)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond);
PLM_QD_BENCH(kQ8_0)
PLM_QD_BENCH(kQ4_0)
PLM_QD_BENCH(kQ4_K)
PLM_QD_BENCH(kQ6_K)
PLM_QD_BENCH(kQ5_K)
PLM_QD_BENCH(kIQ4_XS)
#undef PLM_QD_BENCH

}  // namespace
}  // namespace pocketlm

BENCHMARK_MAIN();
