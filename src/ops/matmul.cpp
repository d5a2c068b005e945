// SIMD matmul against f32 / f16 / bf16 weights, written once with Google Highway and compiled for every
// target of the platform (SSE4, AVX2, AVX-512, NEON, ...); the best one is picked at run time, once per call.
#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <span>
#include <type_traits>
#include <vector>

#include "ops/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cpp"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Must follow highway.h (per-target code).
#include "ops/half_load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Converts n stored values to f32.
void ToF32(DType type, const uint8_t* src, size_t n, float* HWY_RESTRICT dst) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  // Scalar loads go through memcpy: callers may pass rows at any byte address (a view of part of a row, tests).
  if (type == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if (type == DType::kF16 || type == DType::kBF16) {
    const auto* s = reinterpret_cast<const uint16_t*>(src);
    if (type == DType::kF16) {
      for (; i + N <= n; i += N) hn::StoreU(LoadF16AsF32(df, s + i), df, dst + i);
    } else {
      for (; i + N <= n; i += N) hn::StoreU(LoadBF16AsF32(df, s + i), df, dst + i);
    }
    for (; i < n; ++i) {
      uint16_t h;
      hwy::CopyBytes<2>(src + 2 * i, &h);
      dst[i] = type == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
    }
  } else {
    // Quantized blocks: the scalar reference decoder (bit-exact with ggml); SIMD decoders come with the
    // quantized matmul kernels.
    quant::GetQuantTraits(type).dequantize_row(src, dst, static_cast<int64_t>(n));
  }
}

// sum_i w[i] * x[i]. Four independent accumulators so consecutive FMAs do not wait on each other (decode path).
float Dot(const float* HWY_RESTRICT w, const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(df, w + i), hn::LoadU(df, x + i), a0);
    a1 = hn::MulAdd(hn::LoadU(df, w + i + N), hn::LoadU(df, x + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(df, w + i + 2 * N), hn::LoadU(df, x + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(df, w + i + 3 * N), hn::LoadU(df, x + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(df, w + i), hn::LoadU(df, x + i), a0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

// Prefill-shaped products (>= 4 tokens): a register-tiled GEMM with the weight rows in vector lanes, as BLIS packs
// a panel of A (Van Zee & van de Geijn, "BLIS", ACM TOMS 2015). P = 2N rows (N = lanes) x kKc values of k are
// converted to f32 and stored k-major, panel[k][0..P), so one load yields value k of N rows; a tile of P rows x T
// tokens keeps 2T accumulators, and per k does 2 loads, T broadcasts of x[t][k] and 2T FMAs. T = 12 where there
// are 32 vector registers (AVX-512, NEON, SVE: 24 accumulators), 6 where there are 16 (AVX2, SSE4). No horizontal
// sums: each output (row, token) is one lane, summed in order k = 0, 1, ... within a chunk of kKc values.
// The panel (P x kKc f32: 16 KiB on AVX-512) stays in L1 while every token tile passes over it; the tokens' x
// chunk (n_tokens x kKc) comes from L2. Replaced a 4 x 4 tile of dot products with one horizontal sum per (row,
// token, chunk): f16 prefill of the Qwen2-0.5B-shaped model (bench/inference.sh, 2 threads) 103 -> ~210 tokens/s.
constexpr size_t kKc = 128;

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
    HWY_TARGET == HWY_SCALAR
constexpr int kTileTokens = 6;
#else
constexpr int kTileTokens = 12;
#endif

// Rows [r, r + nr) x values [k0, k0 + k) of w as f32, k-major: panel[kk * P + i] = w[r + i][k0 + kk]; rows nr..P
// are zero. row_buf: k floats.
void PackPanel(const TensorView& w, int64_t r, int nr, size_t P, size_t k0, size_t k, float* HWY_RESTRICT panel,
               float* HWY_RESTRICT row_buf) {
  const size_t elem = w.type == DType::kF32 ? 4 : 2;
  for (size_t i = 0; i < P; ++i) {
    if (static_cast<int>(i) < nr) {
      ToF32(w.type, w.row(r + static_cast<int64_t>(i)) + k0 * elem, k, row_buf);
      for (size_t kk = 0; kk < k; ++kk) panel[kk * P + i] = row_buf[kk];
    } else {
      for (size_t kk = 0; kk < k; ++kk) panel[kk * P + i] = 0.0f;
    }
  }
}

// y[t][0..nr) = (add ? y[t][0..nr) : 0) + (lo, hi): the two accumulators of one token, P = 2N lanes.
template <class D, class V>
HWY_INLINE void StoreTileRow(D df, V lo, V hi, float* HWY_RESTRICT y, bool add, size_t nr) {
  const size_t N = hn::Lanes(df);
  if (nr == 2 * N) {
    if (add) {
      lo = hn::Add(hn::LoadU(df, y), lo);
      hi = hn::Add(hn::LoadU(df, y + N), hi);
    }
    hn::StoreU(lo, df, y);
    hn::StoreU(hi, df, y + N);
    return;
  }
  HWY_ALIGN float buf[2 * hn::MaxLanes(df)];
  hn::Store(lo, df, buf);
  hn::Store(hi, df, buf + N);
  for (size_t i = 0; i < nr; ++i) y[i] = add ? y[i] + buf[i] : buf[i];
}

// One tile: T tokens (x rows at x_stride) x the panel's P rows over k values. Named accumulators, not an array:
// SVE vectors are sizeless and cannot be array elements.
template <int T>
HWY_NOINLINE void PanelTile(const float* HWY_RESTRICT panel, size_t k, const float* HWY_RESTRICT x, size_t x_stride,
                            float* HWY_RESTRICT y, size_t y_stride, bool add, size_t nr) {
  static_assert(T >= 1 && T <= 12);
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t P = 2 * N;
  // clang-format off
#define PLM_TILE_ACC(j) auto a0_##j = hn::Zero(df), a1_##j = hn::Zero(df);
  PLM_TILE_ACC(0) PLM_TILE_ACC(1) PLM_TILE_ACC(2) PLM_TILE_ACC(3) PLM_TILE_ACC(4) PLM_TILE_ACC(5)
  PLM_TILE_ACC(6) PLM_TILE_ACC(7) PLM_TILE_ACC(8) PLM_TILE_ACC(9) PLM_TILE_ACC(10) PLM_TILE_ACC(11)
#undef PLM_TILE_ACC
  for (size_t kk = 0; kk < k; ++kk) {
    const auto w0 = hn::Load(df, panel + kk * P), w1 = hn::Load(df, panel + kk * P + N);
#define PLM_TILE_STEP(j)                              \
  if constexpr (T > j) {                              \
    const auto b = hn::Set(df, x[j * x_stride + kk]); \
    a0_##j = hn::MulAdd(w0, b, a0_##j);               \
    a1_##j = hn::MulAdd(w1, b, a1_##j);               \
  }
    PLM_TILE_STEP(0) PLM_TILE_STEP(1) PLM_TILE_STEP(2) PLM_TILE_STEP(3) PLM_TILE_STEP(4) PLM_TILE_STEP(5)
    PLM_TILE_STEP(6) PLM_TILE_STEP(7) PLM_TILE_STEP(8) PLM_TILE_STEP(9) PLM_TILE_STEP(10) PLM_TILE_STEP(11)
#undef PLM_TILE_STEP
  }
#define PLM_TILE_STORE(j) \
  if constexpr (T > j) StoreTileRow(df, a0_##j, a1_##j, y + j * y_stride, add, nr);
  PLM_TILE_STORE(0) PLM_TILE_STORE(1) PLM_TILE_STORE(2) PLM_TILE_STORE(3) PLM_TILE_STORE(4) PLM_TILE_STORE(5)
  PLM_TILE_STORE(6) PLM_TILE_STORE(7) PLM_TILE_STORE(8) PLM_TILE_STORE(9) PLM_TILE_STORE(10) PLM_TILE_STORE(11)
#undef PLM_TILE_STORE
  // clang-format on
}

// Tokens [0, n_tokens) against one packed panel: tiles of kTileTokens, the rest in tiles of 8, 4, 2, 1.
void PanelTokens(const float* panel, size_t k, const float* x, size_t x_stride, int64_t n_tokens, float* y,
                 size_t y_stride, bool add, size_t nr) {
  int64_t t = 0;
  const auto step = [&](auto tile) {
    constexpr int T = decltype(tile)::value;
    for (; t + T <= n_tokens; t += T) {
      PanelTile<T>(panel, k, x + static_cast<size_t>(t) * x_stride, x_stride, y + static_cast<size_t>(t) * y_stride,
                   y_stride, add, nr);
    }
  };
  step(std::integral_constant<int, kTileTokens>());
  step(std::integral_constant<int, 8>());
  step(std::integral_constant<int, 4>());
  step(std::integral_constant<int, 2>());
  step(std::integral_constant<int, 1>());
}

void MatMulRowsPanel(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                     int64_t r0, int64_t r1) {
  const hn::ScalableTag<float> df;
  const size_t P = 2 * hn::Lanes(df);
  const auto n = static_cast<size_t>(w.n_in());
  const size_t elem = w.type == DType::kF32 ? 4 : 2;
  thread_local std::vector<float> panel_buf;
  thread_local std::vector<float> row_buf;
  panel_buf.resize(P * kKc + 16);
  row_buf.resize(kKc);
  float* panel =
      panel_buf.data() + (16 - reinterpret_cast<uintptr_t>(panel_buf.data()) / 4 % 16) % 16;  // 64-byte aligned
  for (int64_t r = r0; r < r1; r += static_cast<int64_t>(P)) {
    const int nr = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(P), r1 - r));
    for (size_t k0 = 0; k0 < n; k0 += kKc) {
      const size_t k = std::min(kKc, n - k0);
      PackPanel(w, r, nr, P, k0, k, panel, row_buf.data());
      // The next chunk's weights (same rows further on, or the next panel's first chunk) come from DRAM: start
      // loading them now, while the tiles below compute for ~10 us. perf: the packing's loads went from ~14%
      // to ~10% of an f16 prefill; the change in tokens/s was within the noise (+-5%).
      const bool more_k = k0 + kKc < n;
      const int64_t pr = more_k ? r : r + static_cast<int64_t>(P);
      const size_t pk0 = more_k ? k0 + kKc : 0;
      for (int64_t i = pr; i < std::min(r1, pr + static_cast<int64_t>(P)); ++i) {
        const uint8_t* next = w.row(i) + pk0 * elem;
        for (size_t b = 0; b < std::min(kKc, n - pk0) * elem; b += 64) hwy::Prefetch(next + b);
      }
      PanelTokens(panel, k, x + k0, n, n_tokens, y + r, static_cast<size_t>(y_stride), accumulate || k0 > 0,
                  static_cast<size_t>(nr));
    }
  }
}

// N stored f16 or bf16 values at p, as f32 (exact).
template <DType kT, class DF>
HWY_INLINE hn::Vec<DF> LoadHalfAsF32(DF df, const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  if constexpr (kT == DType::kF16) return LoadF16AsF32(df, h);
  return LoadBF16AsF32(df, h);
}

// out[i] = dot(row i of f16 / bf16 weights, x) for kR (4 or 1) rows: converted in registers as they are read, two
// accumulators per row, one horizontal sum per row. Decoding through ToF32 into a buffer and Dot (a store, a
// reload and a horizontal sum per row) left f16 decode at ~52% of the read bandwidth. Named accumulators: scalable
// vector types (SVE) cannot be array elements.
template <DType kT, int kR>
HWY_INLINE void DotRowsHalf(const uint8_t* w0, size_t row_bytes, const float* HWY_RESTRICT x, size_t n, float* out) {
  static_assert(kR == 1 || kR == 4);
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  // One row: the other pointers repeat it, so none points past the weights.
  const uint8_t* w1 = kR == 4 ? w0 + row_bytes : w0;
  const uint8_t* w2 = kR == 4 ? w1 + row_bytes : w0;
  const uint8_t* w3 = kR == 4 ? w2 + row_bytes : w0;
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto x0 = hn::LoadU(df, x + i), x1 = hn::LoadU(df, x + i + N);
    a0 = hn::MulAdd(LoadHalfAsF32<kT>(df, w0 + 2 * i), x0, a0);
    b0 = hn::MulAdd(LoadHalfAsF32<kT>(df, w0 + 2 * (i + N)), x1, b0);
    if constexpr (kR == 4) {
      a1 = hn::MulAdd(LoadHalfAsF32<kT>(df, w1 + 2 * i), x0, a1);
      a2 = hn::MulAdd(LoadHalfAsF32<kT>(df, w2 + 2 * i), x0, a2);
      a3 = hn::MulAdd(LoadHalfAsF32<kT>(df, w3 + 2 * i), x0, a3);
      b1 = hn::MulAdd(LoadHalfAsF32<kT>(df, w1 + 2 * (i + N)), x1, b1);
      b2 = hn::MulAdd(LoadHalfAsF32<kT>(df, w2 + 2 * (i + N)), x1, b2);
      b3 = hn::MulAdd(LoadHalfAsF32<kT>(df, w3 + 2 * (i + N)), x1, b3);
    }
  }
  for (; i + N <= n; i += N) {
    const auto x0 = hn::LoadU(df, x + i);
    a0 = hn::MulAdd(LoadHalfAsF32<kT>(df, w0 + 2 * i), x0, a0);
    if constexpr (kR == 4) {
      a1 = hn::MulAdd(LoadHalfAsF32<kT>(df, w1 + 2 * i), x0, a1);
      a2 = hn::MulAdd(LoadHalfAsF32<kT>(df, w2 + 2 * i), x0, a2);
      a3 = hn::MulAdd(LoadHalfAsF32<kT>(df, w3 + 2 * i), x0, a3);
    }
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, b0)));
  if constexpr (kR == 4) {
    out[1] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a1, b1)));
    out[2] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a2, b2)));
    out[3] = hn::GetLane(hn::SumOfLanes(df, hn::Add(a3, b3)));
  }
  for (; i < n; ++i) {
    const uint8_t* ws[4] = {w0, w1, w2, w3};
    for (int r = 0; r < kR; ++r) {
      uint16_t h;
      hwy::CopyBytes<2>(ws[r] + 2 * i, &h);
      out[r] += (kT == DType::kF16 ? F16ToF32(h) : BF16ToF32(h)) * x[i];
    }
  }
}

// Rows [r0, r1) of f16 / bf16 weights for fewer than 4 tokens (decode), 4 rows at a time.
template <DType kT>
void MatMulRowsHalf(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    int64_t r0, int64_t r1) {
  const size_t n = static_cast<size_t>(w.n_in()), rb = w.row_bytes();
  // Keep ~8 KB of loads in flight ahead of the rows being read (one core's demand misses and hardware prefetch
  // alone left f16 decode at ~45% of the read bandwidth).
  const int64_t ahead = static_cast<int64_t>(std::max<size_t>(4, 8192 / rb));
  float s[4];
  for (int64_t r = r0; r < r1; r += 4) {
    for (int64_t p = r + ahead; p < std::min(r1, r + ahead + 4); ++p) {
      for (size_t b = 0; b < rb; b += 64) hwy::Prefetch(w.row(p) + b);
    }
    const int nr = static_cast<int>(std::min<int64_t>(4, r1 - r));
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * static_cast<int64_t>(n);
      if (nr == 4) {
        DotRowsHalf<kT, 4>(w.row(r), rb, xt, n, s);
      } else {
        for (int i = 0; i < nr; ++i) DotRowsHalf<kT, 1>(w.row(r + i), rb, xt, n, s + i);  // the last 1-3 rows
      }
      for (int i = 0; i < nr; ++i) {
        float& dst = y[t * y_stride + r + i];
        dst = accumulate ? dst + s[i] : s[i];
      }
    }
  }
}

void MatMulRows(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                int64_t r0, int64_t r1) {
  if (n_tokens < 4 && w.type == DType::kBF16)
    return MatMulRowsHalf<DType::kBF16>(w, x, n_tokens, y, y_stride, accumulate, r0, r1);
  if (n_tokens < 4 && w.type == DType::kF16) {
    return MatMulRowsHalf<DType::kF16>(w, x, n_tokens, y, y_stride, accumulate, r0, r1);
  }
  const bool plain = w.type == DType::kF32 || w.type == DType::kF16 || w.type == DType::kBF16;
  if (n_tokens >= 4 && plain) {
    MatMulRowsPanel(w, x, n_tokens, y, y_stride, accumulate, r0, r1);
    return;
  }
  const size_t n = static_cast<size_t>(w.n_in());
  std::vector<float> row(w.type == DType::kF32 ? 0 : n);
  // Decode streams the rows from DRAM once per token: keep ~8 KB of loads in flight ahead of the row being read
  // (one core's demand misses and hardware prefetch alone left f16 decode at ~45% of the read bandwidth).
  const size_t ahead = std::max<size_t>(1, 8192 / w.row_bytes());
  for (int64_t r = r0; r < r1; ++r) {
    if (r + static_cast<int64_t>(ahead) < r1) {
      const uint8_t* next = w.row(r + static_cast<int64_t>(ahead));
      for (size_t b = 0; b < w.row_bytes(); b += 64) hwy::Prefetch(next + b);
    }
    const float* wr = reinterpret_cast<const float*>(w.row(r));
    if (w.type != DType::kF32) {
      ToF32(w.type, w.row(r), n, row.data());
      wr = row.data();
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float s1 = Dot(wr, x + t * static_cast<int64_t>(n), n);
      float& dst = y[t * y_stride + r];
      dst = accumulate ? dst + s1 : s1;
    }
  }
}

void MatMulTransposedAccumulateRowsImpl(const TensorView& wt, const float* a, int64_t n_tokens, int64_t a_stride,
                                        float* y, int64_t y_stride, int64_t o0, int64_t o1) {
  // Columns go in blocks of kCols: the block's K rows are converted to f32 once (K x kCols floats, in cache) and
  // every token then keeps its kCols outputs in vector accumulators across all K terms.
  constexpr int64_t kCols = 64;
  const int64_t K = wt.n_out();
  const hn::ScalableTag<float> df;
  const auto N = static_cast<int64_t>(hn::Lanes(df));
  const size_t elem = wt.type == DType::kF32 ? 4 : 2;
  thread_local std::vector<float> tile;
  tile.resize(static_cast<size_t>(K * kCols));
  for (int64_t c0 = o0; c0 < o1; c0 += kCols) {
    const int64_t nc = std::min(kCols, o1 - c0);
    for (int64_t k = 0; k < K; ++k) {
      ToF32(wt.type, wt.row(k) + static_cast<size_t>(c0) * elem, static_cast<size_t>(nc), tile.data() + k * kCols);
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* at = a + t * a_stride;
      float* yt = y + t * y_stride + c0;
      int64_t j = 0;
      for (; j + N <= nc; j += N) {
        auto acc = hn::LoadU(df, yt + j);
        for (int64_t k = 0; k < K; ++k)
          acc = hn::MulAdd(hn::Set(df, at[k]), hn::LoadU(df, tile.data() + k * kCols + j), acc);
        hn::StoreU(acc, df, yt + j);
      }
      for (; j < nc; ++j) {
        float acc = yt[j];
        for (int64_t k = 0; k < K; ++k) acc = std::fma(at[k], tile[static_cast<size_t>(k * kCols + j)], acc);
        yt[j] = acc;
      }
    }
  }
}

void DequantizeRowImpl(const TensorView& w, int64_t r, float* out) {
  const int64_t R = w.interleave;
  if (R != 0 && r < w.n_out() / R * R) {  // row r % R of its unit, back in the GGUF layout
    std::vector<uint8_t> row(w.row_bytes());
    quant::DeinterleaveRow(w.type, w.row(r / R * R), w.row_bytes(), static_cast<int>(r % R), row.data());
    return ToF32(w.type, row.data(), static_cast<size_t>(w.n_in()), out);
  }
  ToF32(w.type, w.row(r), static_cast<size_t>(w.n_in()), out);
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(MatMulRows);
HWY_EXPORT(DequantizeRowImpl);
HWY_EXPORT(MatMulTransposedAccumulateRowsImpl);

bool MatMulSupports(DType t) {
  return quant::GetQuantTraits(t).dequantize_row != nullptr;
}

namespace {
// body(i, r0, r1) over a partition of the rows [0, n_out[i]) of every product i of a group, in one parallel region.
// Tiny products (LoRA factors, single rows) are not worth waking the pool for. Otherwise threads claim chunks of the
// group's rows from a shared cursor, in decreasing sizes: remaining / (2 x threads) rounded up to a multiple of
// `align` (the kernels' row tile), as OpenMP's guided schedule does. Large first chunks keep each thread's weight
// stream long; small last chunks make the threads finish together (equal chunks of 1/16 left one thread idle for
// about half a chunk at the end of every product). On a shared machine a thread whose core is busy with another
// process takes fewer chunks instead of holding up the whole region. Every row is still computed by one thread in
// one call, so results do not depend on the schedule.
void ForRowsOfGroup(ThreadPool* pool, std::span<const size_t> n_out, size_t work, size_t align,
                    const std::function<void(size_t i, size_t r0, size_t r1)>& body) {
  const auto threads = static_cast<size_t>(pool == nullptr ? 1 : pool->size());
  if (threads == 1 || work < 32768) {
    for (size_t i = 0; i < n_out.size(); ++i) body(i, 0, n_out[i]);
    return;
  }
  std::vector<size_t> first_row(n_out.size() + 1, 0);  // product i: rows [first_row[i], first_row[i + 1]) of the group
  for (size_t i = 0; i < n_out.size(); ++i) first_row[i + 1] = first_row[i] + n_out[i];
  const size_t total = first_row.back();
  if (total == 0) return;
  std::atomic<size_t> next{0};
  pool->ParallelFor(threads, [&](size_t, size_t) {
    size_t cur = next.load(std::memory_order_relaxed), end = 0, i = 0;
    for (;;) {
      do {
        if (cur >= total) return;
        i = 0;
        while (cur >= first_row[i + 1]) ++i;
        const size_t size = (std::max(align, (total - cur) / (2 * threads)) + align - 1) / align * align;
        end = std::min(first_row[i + 1], cur + size);  // a chunk never crosses into the next product
      } while (!next.compare_exchange_weak(cur, end, std::memory_order_relaxed));
      body(i, cur - first_row[i], end - first_row[i]);
      cur = next.load(std::memory_order_relaxed);
    }
  });
}

// The products of a group, all of one input x: (n_tokens, n_in).
void RunGroup(std::span<const MatMulOutput> outs, const float* x, int64_t n_tokens, bool accumulate, ThreadPool* pool,
              std::vector<uint8_t>* act_scratch, const std::function<void(int64_t, int64_t)>* after_rows) {
  const int64_t n_in = outs.front().w->n_in();
  // Quantized weights multiply activations quantized once per weight type (as llama.cpp does: Q8_0 / Q8_1 / Q8_K
  // by weight type), with integer dot products straight from the packed weight blocks.
  // Kept across calls (thread_local) so that their vectors keep their capacity: no allocation per decoded token.
  thread_local std::vector<std::vector<uint8_t>> extra_scratch;
  thread_local std::vector<QuantActs> prepared_store;
  if (prepared_store.size() < outs.size()) prepared_store.resize(outs.size());
  // A reference: the workers' lambda below must read this thread's store, not their own thread_local.
  std::vector<QuantActs>& prepared = prepared_store;
  std::vector<size_t> owner(outs.size());  // products of one weight type share the first one's activations
  std::vector<size_t> n_out(outs.size());
  size_t work = 0, act_buffers = 0;
  bool any_plain = false;
  for (size_t i = 0; i < outs.size(); ++i) {
    const TensorView& w = *outs[i].w;
    n_out[i] = static_cast<size_t>(w.n_out());
    work += n_out[i] * static_cast<size_t>(n_in) * static_cast<size_t>(n_tokens);
    if (!HasQuantDot(w.type)) {
      any_plain = true;
      continue;
    }
    size_t same = 0;
    while (same < i && outs[same].w->type != w.type) ++same;
    owner[i] = same;
    if (same < i) continue;
    std::vector<uint8_t>* buf = act_scratch;
    if (buf == nullptr || act_buffers > 0) {
      if (extra_scratch.size() < act_buffers + 1) extra_scratch.resize(act_buffers + 1);
      buf = &extra_scratch[act_buffers];
    }
    ++act_buffers;
    const size_t act_row = ActivationRowBytes(w.type, n_in);
    buf->resize(act_row * static_cast<size_t>(n_tokens));
    // Token rows in parallel for prefill (one thread quantizing 256 rows was ~4% of a prefill).
    const auto quantize = [&](size_t t0, size_t t1) {
      QuantizeActivations(w.type, x + t0 * static_cast<size_t>(n_in), static_cast<int64_t>(t1 - t0), n_in,
                          buf->data() + t0 * act_row);
    };
    if (pool != nullptr && pool->size() > 1 && n_tokens >= 16) {
      pool->ParallelFor(static_cast<size_t>(n_tokens), quantize);
    } else {
      quantize(0, static_cast<size_t>(n_tokens));
    }
    PrepareQuantActs(w.type, buf->data(), act_row, n_tokens, n_in, &prepared[i]);
  }
  // Prefill: whole 32-row panels (the quantized GEMM's on AVX-512, the float GEMM's 2N rows); decode: finer chunks.
  const size_t align = n_tokens >= 8 || (any_plain && n_tokens >= 4) ? 32 : 16;
  ForRowsOfGroup(pool, n_out, work, align, [&](size_t i, size_t r0, size_t r1) {
    const MatMulOutput& o = outs[i];
    const TensorView& w = *o.w;
    const auto lo = static_cast<int64_t>(r0), hi = static_cast<int64_t>(r1);
    if (!HasQuantDot(w.type)) {
      HWY_DYNAMIC_DISPATCH(MatMulRows)
      (w, x, n_tokens, o.y, o.y_stride, accumulate, lo, hi);
    } else if (w.interleave != 0) {
      QuantMatMulRowsInterleaved(prepared[owner[i]], w.data, w.row_bytes(), w.n_out(), o.y, o.y_stride, accumulate, lo,
                                 hi);
    } else {
      QuantMatMulRows(prepared[owner[i]], w.data, w.row_bytes(), o.y, o.y_stride, accumulate, lo, hi);
    }
    if (after_rows != nullptr) (*after_rows)(lo, hi);
  });
}
}  // namespace

void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    ThreadPool* pool, std::vector<uint8_t>* act_scratch,
                    const std::function<void(int64_t, int64_t)>* after_rows) {
  const MatMulOutput out{&w, y, y_stride};
  RunGroup(std::span<const MatMulOutput>(&out, 1), x, n_tokens, accumulate, pool, act_scratch, after_rows);
}

void MatMulWeightsTGroup(std::span<const MatMulOutput> outs, const float* x, int64_t n_tokens, ThreadPool* pool,
                         std::vector<uint8_t>* act_scratch) {
  if (outs.empty()) return;
  RunGroup(outs, x, n_tokens, /*accumulate=*/false, pool, act_scratch, nullptr);
}

void MatMulWeightsTRows(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                        bool accumulate, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(MatMulRows)(w, x, n_tokens, y, y_stride, accumulate, r0, r1);
}

void MatMulTransposedAccumulateRows(const TensorView& wt, const float* a, int64_t n_tokens, int64_t a_stride, float* y,
                                    int64_t y_stride, int64_t o0, int64_t o1) {
  HWY_DYNAMIC_DISPATCH(MatMulTransposedAccumulateRowsImpl)(wt, a, n_tokens, a_stride, y, y_stride, o0, o1);
}

void DequantizeRow(const TensorView& w, int64_t r, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)(w, r, out);
}

}  // namespace pocketlm
#endif
