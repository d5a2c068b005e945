#include "tensor/dtype.h"

#include <array>

namespace pocketlm {

namespace {
// Block sizes and byte counts from the GGUF specification (ggml.h / ggml-common.h, QK_K = 256); vec_dot_type as
// ggml-cpu's type_traits_cpu.
using D = DType;
constexpr uint32_t kLegacyX16 = kCapQuantDot | kCapInterleaved | kCapX16Kernels | kCapArmDot;
constexpr std::array<DTypeInfo, 31> kTypes = {{
    {D::kF32, "f32", 1, 4, false, D::kF32, 0},
    {D::kF16, "f16", 1, 2, false, D::kF16, 0},
    {D::kQ4_0, "q4_0", 32, 18, true, D::kQ8_0, kLegacyX16},
    {D::kQ4_1, "q4_1", 32, 20, true, D::kQ8_1, kCapQuantDot | kCapArmDot},
    {D::kQ5_0, "q5_0", 32, 22, true, D::kQ8_0, kLegacyX16},
    {D::kQ5_1, "q5_1", 32, 24, true, D::kQ8_1, kCapQuantDot | kCapArmDot},
    {D::kQ8_0, "q8_0", 32, 34, true, D::kQ8_0, kLegacyX16},
    {D::kQ8_1, "q8_1", 32, 36, true, D::kQ8_1, 0},
    {D::kQ2_K, "q2_K", 256, 84, true, D::kQ8_K, kCapQuantDot},
    {D::kQ3_K, "q3_K", 256, 110, true, D::kQ8_K, kCapQuantDot},
    {D::kQ4_K, "q4_K", 256, 144, true, D::kQ8_K, kLegacyX16},
    {D::kQ5_K, "q5_K", 256, 176, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kQ6_K, "q6_K", 256, 210, true, D::kQ8_K, kLegacyX16},
    {D::kQ8_K, "q8_K", 256, 292, true, D::kQ8_K, 0},
    {D::kIQ2_XXS, "iq2_xxs", 256, 66, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ2_XS, "iq2_xs", 256, 74, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ3_XXS, "iq3_xxs", 256, 98, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ1_S, "iq1_s", 256, 50, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ4_NL, "iq4_nl", 32, 18, true, D::kQ8_0, kCapQuantDot | kCapArmDot},
    {D::kIQ3_S, "iq3_s", 256, 110, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ2_S, "iq2_s", 256, 82, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kIQ4_XS, "iq4_xs", 256, 136, true, D::kQ8_K, kCapQuantDot},
    {D::kI8, "i8", 1, 1, false, D::kI8, 0},
    {D::kI16, "i16", 1, 2, false, D::kI16, 0},
    {D::kI32, "i32", 1, 4, false, D::kI32, 0},
    {D::kI64, "i64", 1, 8, false, D::kI64, 0},
    {D::kF64, "f64", 1, 8, false, D::kF64, 0},
    {D::kIQ1_M, "iq1_m", 256, 56, true, D::kQ8_K, kCapQuantDot | kCapArmDot},
    {D::kBF16, "bf16", 1, 2, false, D::kBF16, 0},
    {D::kTQ1_0, "tq1_0", 256, 54, true, D::kQ8_K, 0},
    {D::kTQ2_0, "tq2_0", 256, 66, true, D::kQ8_K, 0},
}};
}  // namespace

std::optional<DTypeInfo> LookupDType(uint32_t raw) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == raw) return t;
  }
  return std::nullopt;
}

const DTypeInfo& GetDTypeInfo(DType t) {
  for (const auto& info : kTypes) {
    if (info.type == t) return info;
  }
  return kTypes[0];  // unreachable for a defined DType; LookupDType guards raw values from files
}

std::optional<uint64_t> RowBytes(DType t, uint64_t n) {
  const auto& info = GetDTypeInfo(t);
  if (n % info.block_size != 0) return std::nullopt;
  return n / info.block_size * info.type_size;
}

}  // namespace pocketlm
