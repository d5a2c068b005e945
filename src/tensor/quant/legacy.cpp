// Plain float rows and ggml's original 32-value block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// Dequantizers follow ggml-quants.c dequantize_row_*; quantizers follow quantize_row_*_ref (the path llama-quantize
// takes without an importance matrix). Values j and j + 16 of a block share byte j of qs (low / high nibble).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {

// ---- f32 / f16 / bf16 -------------------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kF32>(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
template <>
void QuantizeRow<DType::kF32>(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
// 16-bit values through memcpy: rows may sit at any byte address (GGUF aligns tensors, not views into them).
template <>
void DequantizeRow<DType::kF16>(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = F16ToF32(h);
  }
}
template <>
void QuantizeRow<DType::kF16>(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = F32ToF16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}
template <>
void DequantizeRow<DType::kBF16>(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = BF16ToF32(h);
  }
}
template <>
void QuantizeRow<DType::kBF16>(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = F32ToBF16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

// ---- Q4_0: x = d * (q - 8) ----------------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ4_0>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  constexpr int qk = kQK4_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      dst[i * qk + j] = static_cast<float>(x0) * d;
      dst[i * qk + j + qk / 2] = static_cast<float>(x1) * d;
    }
  }
}

// d = (the value of largest magnitude) / -8, so that value maps exactly to q = 0 and the other side gets the
// extra level (ggml quantize_row_q4_0_ref). q = trunc(x/d + 8.5), clamped to 15.
template <>
void QuantizeRow<DType::kQ4_0>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  constexpr int qk = kQK4_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < qk; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < qk / 2; ++j) {
      const auto xi0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
      const auto xi1 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[qk / 2 + j] * id + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

// ---- Q4_1: x = d * q + m ------------------------------------------------------------------------------------------

template <>
void DequantizeRow<DType::kQ4_1>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  constexpr int qk = kQK4_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    const float m = F16ToF32(x[i].m);
    for (int j = 0; j < qk / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      dst[i * qk + j] = static_cast<float>(x0) * d + m;
      dst[i * qk + j + qk / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

// m = min, d = (max - min) / 15, q = trunc((x - min)/d + 0.5) (ggml quantize_row_q4_1_ref).
template <>
void QuantizeRow<DType::kQ4_1>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  constexpr int qk = kQK4_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < qk; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(min);
    for (int j = 0; j < qk / 2; ++j) {
      const auto xi0 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f))));
      const auto xi1 =
          static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((x[qk / 2 + j] - min) * id + 0.5f))));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

// ---- Q5_0 / Q5_1: 5-bit q, bit 4 of value j in bit j of qh ------------------------------------------------------

namespace {
// Value j's 5th bit, shifted to bit 4 (ggml: ((qh >> j) << 4) & 0x10 for the low half, (qh >> (j + 12)) & 0x10 for
// the high half, where bit j + 16 is wanted).
inline uint32_t LoadQh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, sizeof(v));
  return v;
}
}  // namespace

template <>
void DequantizeRow<DType::kQ5_0>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  constexpr int qk = kQK5_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint32_t qh = LoadQh(x[i].qh);
    for (int j = 0; j < qk / 2; ++j) {
      const auto xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const auto xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
      dst[i * qk + j] = static_cast<float>(x0) * d;
      dst[i * qk + j + qk / 2] = static_cast<float>(x1) * d;
    }
  }
}

// As Q4_0 with 32 levels: d = max / -16, q = trunc(x/d + 16.5) clamped to 31 (ggml quantize_row_q5_0_ref).
template <>
void QuantizeRow<DType::kQ5_0>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  constexpr int qk = kQK5_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < qk; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const auto xi0 = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
      const auto xi1 =
          static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[qk / 2 + j] * id + 16.5f))));
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

template <>
void DequantizeRow<DType::kQ5_1>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  constexpr int qk = kQK5_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    const float m = F16ToF32(x[i].m);
    const uint32_t qh = LoadQh(x[i].qh);
    for (int j = 0; j < qk / 2; ++j) {
      const auto xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const auto xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
      const int x1 = (x[i].qs[j] >> 4) | xh_1;
      dst[i * qk + j] = static_cast<float>(x0) * d + m;
      dst[i * qk + j + qk / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

// As Q4_1 with d = (max - min) / 31; q = trunc((x - min)/d + 0.5), no clamp (ggml quantize_row_q5_1_ref).
template <>
void QuantizeRow<DType::kQ5_1>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  constexpr int qk = kQK5_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < qk; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(min);
    uint32_t qh = 0;
    for (int j = 0; j < qk / 2; ++j) {
      const auto xi0 = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const auto xi1 = static_cast<uint8_t>((x[qk / 2 + j] - min) * id + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
      qh |= ((xi1 & 0x10u) >> 4) << (j + qk / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

// ---- Q8_0 / Q8_1: x = d * q, q = round(x / d) with d = max|x| / 127 ---------------------------------------------

template <>
void DequantizeRow<DType::kQ8_0>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  constexpr int qk = kQK8_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < qk; ++j) dst[i * qk + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// ggml quantize_row_q8_0_ref: roundf (half away from zero), not nearest_int.
template <>
void QuantizeRow<DType::kQ8_0>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  constexpr int qk = kQK8_0;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float amax = 0.0f;
    for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < qk; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

template <>
void DequantizeRow<DType::kQ8_1>(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_1*>(src);
  constexpr int qk = kQK8_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int j = 0; j < qk; ++j) dst[i * qk + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

// ggml quantize_row_q8_1_ref: as Q8_0, plus s = sum(q) * d.
template <>
void QuantizeRow<DType::kQ8_1>(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  constexpr int qk = kQK8_1;
  for (int64_t i = 0; i < n / qk; ++i) {
    const float* x = src + i * qk;
    float amax = 0.0f;
    for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    int sum = 0;
    for (int j = 0; j < qk / 2; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      y[i].qs[qk / 2 + j] = static_cast<int8_t>(std::round(x[qk / 2 + j] * id));
      sum += y[i].qs[j] + y[i].qs[qk / 2 + j];
    }
    y[i].s = F32ToF16(static_cast<float>(sum) * d);
  }
}

}  // namespace pocketlm::quant
