// SIMD matmul against f32 / f16 / bf16 weights, written once with Google Highway and compiled for every
// target of the platform (SSE4, AVX2, AVX-512, NEON, ...); the best one is picked at run time, once per call.
#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "ops/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant/interleave.h"
#include "tensor/quant/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

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
  } else if (type == DType::kF16) {
#if HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    // Integer widening instead of hn::PromoteTo: Highway 1.0's emulated f16 promotion (targets without F16C,
    // e.g. SSE4 and SCALAR) turns f16 infinities and NaNs into finite values. Exact for every encoding:
    // shifting the exponent|mantissa bits into f32 position and scaling by 2^112 rebiases normals and
    // normalizes subnormals; exponent 31 (inf / NaN) gets the f32 all-ones exponent.
    const hn::Rebind<uint16_t, decltype(df)> d16;
    const hn::Rebind<int32_t, decltype(df)> di;
    const auto* s = reinterpret_cast<const uint16_t*>(src);
    const auto k_abs = hn::Set(di, 0x7FFF);
    const auto k_max_finite = hn::Set(di, 0x7BFF);
    const auto k_exp_ones = hn::Set(di, 0x7F800000);
    const auto k_rebias = hn::Set(df, 0x1p112f);
    for (; i + N <= n; i += N) {
      const auto h = hn::BitCast(di, hn::PromoteTo(hn::Rebind<uint32_t, decltype(df)>(), hn::LoadU(d16, s + i)));
      const auto em = hn::And(h, k_abs);
      const auto sign = hn::ShiftLeft<16>(hn::Xor(h, em));
      const auto shifted = hn::ShiftLeft<13>(em);
      const auto finite = hn::Mul(hn::BitCast(df, shifted), k_rebias);
      const auto special = hn::BitCast(df, hn::Or(shifted, k_exp_ones));
      const auto mag = hn::IfThenElse(hn::RebindMask(df, hn::Gt(em, k_max_finite)), special, finite);
      hn::StoreU(hn::Or(mag, hn::BitCast(df, sign)), df, dst + i);
    }
#else
    // Native conversion (F16C on AVX2/AVX-512, fcvtl on NEON/SVE): exact for every encoding, and the decode
    // hot path for f16 weights.
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto* s = reinterpret_cast<const hwy::float16_t*>(src);
    for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, s + i)), df, dst + i);
#endif
    for (; i < n; ++i) {
      uint16_t h;
      hwy::CopyBytes<2>(src + 2 * i, &h);
      dst[i] = F16ToF32(h);
    }
  } else if (type == DType::kBF16) {
    // bf16 is the top half of an f32: widen to u32 and shift.
    const hn::Rebind<uint16_t, decltype(df)> d16;
    const hn::Rebind<uint32_t, decltype(df)> d32;
    const auto* s = reinterpret_cast<const uint16_t*>(src);
    for (; i + N <= n; i += N) {
      hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, s + i)))), df, dst + i);
    }
    for (; i < n; ++i) {
      uint16_t h;
      hwy::CopyBytes<2>(src + 2 * i, &h);
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      float f;
      hwy::CopyBytes<4>(&bits, &f);
      dst[i] = f;
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

// 4 weight rows x 4 tokens over k values: 16 accumulators, 8 loads per 16 FMAs (one row x one token needs 2 per 1).
//   w[i]: row i (k values); x: 4 token rows with stride x_stride; acc[i][t] += sum_k w[i][k] * x[t][k]
void Tile4x4(const float* const* w, const float* HWY_RESTRICT x, size_t x_stride, size_t k, float acc[4][4]) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a00 = hn::Zero(df), a01 = hn::Zero(df), a02 = hn::Zero(df), a03 = hn::Zero(df);
  auto a10 = hn::Zero(df), a11 = hn::Zero(df), a12 = hn::Zero(df), a13 = hn::Zero(df);
  auto a20 = hn::Zero(df), a21 = hn::Zero(df), a22 = hn::Zero(df), a23 = hn::Zero(df);
  auto a30 = hn::Zero(df), a31 = hn::Zero(df), a32 = hn::Zero(df), a33 = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= k; i += N) {
    const auto x0 = hn::LoadU(df, x + i), x1 = hn::LoadU(df, x + x_stride + i);
    const auto x2 = hn::LoadU(df, x + 2 * x_stride + i), x3 = hn::LoadU(df, x + 3 * x_stride + i);
    auto w0 = hn::LoadU(df, w[0] + i);
    a00 = hn::MulAdd(w0, x0, a00), a01 = hn::MulAdd(w0, x1, a01), a02 = hn::MulAdd(w0, x2, a02),
    a03 = hn::MulAdd(w0, x3, a03);
    w0 = hn::LoadU(df, w[1] + i);
    a10 = hn::MulAdd(w0, x0, a10), a11 = hn::MulAdd(w0, x1, a11), a12 = hn::MulAdd(w0, x2, a12),
    a13 = hn::MulAdd(w0, x3, a13);
    w0 = hn::LoadU(df, w[2] + i);
    a20 = hn::MulAdd(w0, x0, a20), a21 = hn::MulAdd(w0, x1, a21), a22 = hn::MulAdd(w0, x2, a22),
    a23 = hn::MulAdd(w0, x3, a23);
    w0 = hn::LoadU(df, w[3] + i);
    a30 = hn::MulAdd(w0, x0, a30), a31 = hn::MulAdd(w0, x1, a31), a32 = hn::MulAdd(w0, x2, a32),
    a33 = hn::MulAdd(w0, x3, a33);
  }
  const decltype(a00)* all[4][4] = {
      {&a00, &a01, &a02, &a03}, {&a10, &a11, &a12, &a13}, {&a20, &a21, &a22, &a23}, {&a30, &a31, &a32, &a33}};
  for (int r = 0; r < 4; ++r) {
    for (int t = 0; t < 4; ++t) {
      float sum = hn::GetLane(hn::SumOfLanes(df, *all[r][t]));
      for (size_t j = i; j < k; ++j) sum += w[r][j] * x[t * x_stride + j];
      acc[r][t] += sum;
    }
  }
}

// Prefill-shaped products (>= 4 tokens): blocked over the inner dimension so that the activation chunk of every
// token (n_tokens x kKc floats) stays in cache while all rows of the range pass over it, and tiled 4 rows x 4
// tokens. Weight chunks are converted to f32 just before use (each weight value once per call).
void MatMulRowsBlocked(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride,
                       bool accumulate, int64_t r0, int64_t r1) {
  constexpr size_t kKc = 256;
  const size_t n = static_cast<size_t>(w.n_in());
  const size_t elem = w.type == DType::kF32 ? 4 : 2;
  std::vector<float> wbuf(4 * kKc);
  if (!accumulate) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = r0; r < r1; ++r) y[t * y_stride + r] = 0.0f;
    }
  }
  for (size_t k0 = 0; k0 < n; k0 += kKc) {
    const size_t k = n - k0 < kKc ? n - k0 : kKc;
    for (int64_t r = r0; r < r1; r += 4) {
      const int nr = r1 - r < 4 ? static_cast<int>(r1 - r) : 4;
      const float* wr[4];
      for (int i = 0; i < nr; ++i) {
        const uint8_t* src = w.row(r + i) + k0 * elem;
        if (w.type == DType::kF32) {
          wr[i] = reinterpret_cast<const float*>(src);
        } else {
          ToF32(w.type, src, k, wbuf.data() + static_cast<size_t>(i) * kKc);
          wr[i] = wbuf.data() + static_cast<size_t>(i) * kKc;
        }
      }
      int64_t t = 0;
      if (nr == 4) {
        for (; t + 4 <= n_tokens; t += 4) {
          float acc[4][4] = {};
          Tile4x4(wr, x + t * static_cast<int64_t>(n) + static_cast<int64_t>(k0), n, k, acc);
          for (int i = 0; i < 4; ++i) {
            for (int j = 0; j < 4; ++j) y[(t + j) * y_stride + r + i] += acc[i][j];
          }
        }
      }
      for (int i = 0; i < nr; ++i) {
        for (int64_t tt = t; tt < n_tokens; ++tt) {
          y[tt * y_stride + r + i] += Dot(wr[i], x + tt * static_cast<int64_t>(n) + static_cast<int64_t>(k0), k);
        }
      }
    }
  }
}

void MatMulRows(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                int64_t r0, int64_t r1) {
  const bool plain = w.type == DType::kF32 || w.type == DType::kF16 || w.type == DType::kBF16;
  if (n_tokens >= 4 && plain) {
    MatMulRowsBlocked(w, x, n_tokens, y, y_stride, accumulate, r0, r1);
    return;
  }
  const size_t n = static_cast<size_t>(w.n_in());
  std::vector<float> row(w.type == DType::kF32 ? 0 : n);
  for (int64_t r = r0; r < r1; ++r) {
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
// body(r0, r1) over a partition of the rows [0, n_out). Tiny products (LoRA factors, single rows) are not worth
// waking the pool for. Otherwise the rows go out in chunks (multiples of `align` rows, the kernels' row tile; about 8
// per thread) through an atomic counter: on a shared machine a thread whose core is busy with another process
// takes fewer chunks instead of holding up the whole product. Every row is still computed by one thread in one
// call, so results do not depend on the schedule.
void ForRows(ThreadPool* pool, size_t n_out, size_t work, size_t align,
             const std::function<void(size_t, size_t)>& body) {
  const auto threads = static_cast<size_t>(pool == nullptr ? 1 : pool->size());
  if (threads == 1 || work < 32768) {
    body(0, n_out);
    return;
  }
  const size_t per_chunk = std::max(align, (n_out + 8 * threads - 1) / (8 * threads) + align - 1) / align * align;
  const size_t n_chunks = (n_out + per_chunk - 1) / per_chunk;
  std::atomic<size_t> next{0};
  pool->ParallelFor(std::min(threads, n_chunks), [&](size_t, size_t) {
    for (size_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      body(c * per_chunk, std::min(n_out, (c + 1) * per_chunk));
    }
  });
}
}  // namespace

void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    ThreadPool* pool, std::vector<uint8_t>* act_scratch,
                    const std::function<void(int64_t, int64_t)>* after_rows) {
  const auto n_out = static_cast<size_t>(w.n_out());
  const size_t work = n_out * static_cast<size_t>(w.n_in()) * static_cast<size_t>(n_tokens);
  if (HasQuantDot(w.type)) {
    // Quantize the activations once (as llama.cpp does: Q8_0 / Q8_1 / Q8_K by weight type), then integer dot
    // products straight from the packed weight blocks.
    std::vector<uint8_t> local;
    std::vector<uint8_t>& act = act_scratch != nullptr ? *act_scratch : local;
    const size_t act_row = ActivationRowBytes(w.type, w.n_in());
    act.resize(act_row * static_cast<size_t>(n_tokens));
    // Token rows in parallel for prefill (one thread quantizing 256 rows was ~4% of a prefill).
    const auto quantize = [&](size_t t0, size_t t1) {
      QuantizeActivations(w.type, x + t0 * static_cast<size_t>(w.n_in()), static_cast<int64_t>(t1 - t0), w.n_in(),
                          act.data() + t0 * act_row);
    };
    if (pool != nullptr && pool->size() > 1 && n_tokens >= 16) {
      pool->ParallelFor(static_cast<size_t>(n_tokens), quantize);
    } else {
      quantize(0, static_cast<size_t>(n_tokens));
    }
    QuantActs prepared;
    PrepareQuantActs(w.type, act.data(), act_row, n_tokens, w.n_in(), &prepared);
    // Prefill: whole 32-row panels of the quantized GEMM (quant_gemm_panel-inl.h, AVX-512); decode: finer chunks.
    ForRows(pool, n_out, work, n_tokens >= 8 ? 32 : 16, [&](size_t r0, size_t r1) {
      if (w.interleave != 0) {
        QuantMatMulRowsInterleaved(prepared, w.data, w.row_bytes(), w.n_out(), y, y_stride, accumulate,
                                   static_cast<int64_t>(r0), static_cast<int64_t>(r1));
      } else {
        QuantMatMulRows(prepared, w.data, w.row_bytes(), y, y_stride, accumulate, static_cast<int64_t>(r0),
                        static_cast<int64_t>(r1));
      }
      if (after_rows != nullptr) (*after_rows)(static_cast<int64_t>(r0), static_cast<int64_t>(r1));
    });
    return;
  }
  ForRows(pool, n_out, work, 16, [&](size_t r0, size_t r1) {
    HWY_DYNAMIC_DISPATCH(MatMulRows)
    (w, x, n_tokens, y, y_stride, accumulate, static_cast<int64_t>(r0), static_cast<int64_t>(r1));
    if (after_rows != nullptr) (*after_rows)(static_cast<int64_t>(r0), static_cast<int64_t>(r1));
  });
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
