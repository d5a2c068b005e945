// Per-target loads of stored f16 / bf16 values as f32 vectors, exact for every encoding (infinities and NaNs
// included), shared by the f16 / bf16 weight kernels (matmul.cpp) and the f16 KV cache (attention.cpp). Included
// once per Highway target (foreach_target), hence the toggling guard.
#if defined(POCKETLM_OPS_HALF_LOAD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_HALF_LOAD_INL_H_
#undef POCKETLM_OPS_HALF_LOAD_INL_H_
#else
#define POCKETLM_OPS_HALF_LOAD_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Whether the target converts f16 in hardware (F16C on AVX2 / AVX-512, fcvtl on NEON / SVE). Highway 1.0's
// emulated promotion of the others (SSE4, SSSE3, scalar) turns f16 infinities and NaNs into finite values, so
// they take the integer path below instead.
#if HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
inline constexpr bool kNativeF16 = false;
#else
inline constexpr bool kNativeF16 = true;
#endif

// Lanes(df) f16 values at p (any address) as f32.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadF16AsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  if constexpr (kNativeF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  } else {
    // Shifting the exponent|mantissa bits into f32 position and scaling by 2^112 rebiases normals and normalizes
    // subnormals exactly; exponent 31 (inf / NaN) gets the f32 all-ones exponent, the mantissa (NaN payload) kept.
    const hn::Rebind<uint16_t, DF> d16;
    const hn::Rebind<uint32_t, DF> du;
    const hn::Rebind<int32_t, DF> di;
    const auto h = hn::BitCast(di, hn::PromoteTo(du, hn::LoadU(d16, p)));
    const auto em = hn::And(h, hn::Set(di, 0x7FFF));
    const auto sign = hn::ShiftLeft<16>(hn::Xor(h, em));
    const auto shifted = hn::ShiftLeft<13>(em);
    const auto finite = hn::Mul(hn::BitCast(df, shifted), hn::Set(df, 0x1p112f));
    const auto special = hn::BitCast(df, hn::Or(shifted, hn::Set(di, 0x7F800000)));
    const auto mag = hn::IfThenElse(hn::RebindMask(df, hn::Gt(em, hn::Set(di, 0x7BFF))), special, finite);
    return hn::Or(mag, hn::BitCast(df, sign));
  }
}

// Lanes(df) bf16 values at p as f32: bf16 is the top half of an f32.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadBF16AsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  const hn::Rebind<uint16_t, DF> d16;
  const hn::Rebind<uint32_t, DF> du;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p))));
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // POCKETLM_OPS_HALF_LOAD_INL_H_
