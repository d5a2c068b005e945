// SIMD matmul against f32 / f16 / bf16 weights, written once with Google Highway and compiled for every
// target of the platform (SSE4, AVX2, AVX-512, NEON, ...); the best one is picked at run time, once per call.
#include "ops/matmul.h"

#include <functional>
#include <vector>

#include "ops/quant_dot.h"
#include "tensor/half.h"
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
  if (type == DType::kF32) {
    const auto* s = reinterpret_cast<const float*>(src);
    for (; i < n; ++i) dst[i] = s[i];
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
    for (; i < n; ++i) dst[i] = F16ToF32(reinterpret_cast<const uint16_t*>(src)[i]);
  } else if (type == DType::kBF16) {
    // bf16 is the top half of an f32: widen to u32 and shift.
    const hn::Rebind<uint16_t, decltype(df)> d16;
    const hn::Rebind<uint32_t, decltype(df)> d32;
    const auto* s = reinterpret_cast<const uint16_t*>(src);
    for (; i + N <= n; i += N) {
      hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(d32, hn::LoadU(d16, s + i)))), df, dst + i);
    }
    for (; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(s[i]) << 16;
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

// Dot products of one f32 row against 1..4 token vectors (rows of x, stride n).
template <int kTokens>
void DotRow(const float* HWY_RESTRICT w, const float* HWY_RESTRICT x, size_t n, float* out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wv = hn::LoadU(df, w + i);
    a0 = hn::MulAdd(wv, hn::LoadU(df, x + i), a0);
    if constexpr (kTokens > 1) a1 = hn::MulAdd(wv, hn::LoadU(df, x + n + i), a1);
    if constexpr (kTokens > 2) a2 = hn::MulAdd(wv, hn::LoadU(df, x + 2 * n + i), a2);
    if constexpr (kTokens > 3) a3 = hn::MulAdd(wv, hn::LoadU(df, x + 3 * n + i), a3);
  }
  float s[4] = {hn::GetLane(hn::SumOfLanes(df, a0)), hn::GetLane(hn::SumOfLanes(df, a1)),
                hn::GetLane(hn::SumOfLanes(df, a2)), hn::GetLane(hn::SumOfLanes(df, a3))};
  for (; i < n; ++i) {
    for (int t = 0; t < kTokens; ++t) s[t] += w[i] * x[t * n + i];
  }
  for (int t = 0; t < kTokens; ++t) out[t] = s[t];
}

void MatMulRows(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                int64_t r0, int64_t r1) {
  const size_t n = static_cast<size_t>(w.n_in());
  std::vector<float> row(w.type == DType::kF32 ? 0 : n);
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = reinterpret_cast<const float*>(w.row(r));
    if (w.type != DType::kF32) {
      ToF32(w.type, w.row(r), n, row.data());
      wr = row.data();
    }
    int64_t t = 0;
    float s[4];
    for (; t + 4 <= n_tokens; t += 4) {
      DotRow<4>(wr, x + t * n, n, s);
      for (int k = 0; k < 4; ++k) {
        float& dst = y[(t + k) * y_stride + r];
        dst = accumulate ? dst + s[k] : s[k];
      }
    }
    for (; t < n_tokens; ++t) {
      DotRow<1>(wr, x + t * n, n, s);
      float& dst = y[t * y_stride + r];
      dst = accumulate ? dst + s[0] : s[0];
    }
  }
}

void DequantizeRowImpl(const TensorView& w, int64_t r, float* out) {
  ToF32(w.type, w.row(r), static_cast<size_t>(w.n_in()), out);
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(MatMulRows);
HWY_EXPORT(DequantizeRowImpl);

bool MatMulSupports(DType t) {
  return quant::GetQuantTraits(t).dequantize_row != nullptr;
}

namespace {
// Tiny products (LoRA factors, single rows) are not worth waking the pool for.
void ForRows(ThreadPool* pool, size_t n_out, size_t work, const std::function<void(size_t, size_t)>& body) {
  if (pool == nullptr || work < 32768) {
    body(0, n_out);
  } else {
    pool->ParallelFor(n_out, body);
  }
}
}  // namespace

void MatMulWeightsT(const TensorView& w, const float* x, int64_t n_tokens, float* y, int64_t y_stride, bool accumulate,
                    ThreadPool* pool, std::vector<uint8_t>* act_scratch) {
  const auto n_out = static_cast<size_t>(w.n_out());
  const size_t work = n_out * static_cast<size_t>(w.n_in()) * static_cast<size_t>(n_tokens);
  if (HasQuantDot(w.type)) {
    // Quantize the activations once (as llama.cpp does: Q8_0 / Q8_1 / Q8_K by weight type), then integer dot
    // products straight from the packed weight blocks.
    std::vector<uint8_t> local;
    std::vector<uint8_t>& act = act_scratch != nullptr ? *act_scratch : local;
    const size_t act_row = ActivationRowBytes(w.type, w.n_in());
    act.resize(act_row * static_cast<size_t>(n_tokens));
    QuantizeActivations(w.type, x, n_tokens, w.n_in(), act.data());
    ForRows(pool, n_out, work, [&](size_t r0, size_t r1) {
      QuantMatMulRows(w.type, w.data, w.row_bytes(), w.n_in(), act.data(), act_row, n_tokens, y, y_stride, accumulate,
                      static_cast<int64_t>(r0), static_cast<int64_t>(r1));
    });
    return;
  }
  ForRows(pool, n_out, work, [&](size_t r0, size_t r1) {
    HWY_DYNAMIC_DISPATCH(MatMulRows)
    (w, x, n_tokens, y, y_stride, accumulate, static_cast<int64_t>(r0), static_cast<int64_t>(r1));
  });
}

void DequantizeRow(const TensorView& w, int64_t r, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)(w, r, out);
}

}  // namespace pocketlm
#endif
