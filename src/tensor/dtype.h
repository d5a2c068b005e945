// Storage types of GGUF tensors, numbered as in the GGUF specification (ggml_type), and the registry of what each is:
// block geometry, dot-product partner, kernel capabilities. Quantized types store `block_size` values in `type_size`
// bytes; plain types have block_size 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pocketlm {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// What pocketlm's kernels do with a type beyond reading it (reading and writing is the presence of its row converters,
// tensor/quant/quant.h). Each flag names the code that relies on it.
enum TypeCap : uint32_t {
  kCapQuantDot = 1u << 0,     // integer dot-product kernels against activations of vec_dot_type (ops/quant_dot.h)
  kCapInterleaved = 1u << 1,  // a 16-row interleaved layout (tensor/quant/interleave.h)
  kCapX16Kernels = 1u << 2,   // AVX-512 kernels for that layout (ops/quant_dot_x16-inl.h; q8_0's need VNNI)
  kCapArmDot = 1u << 3,       // ARM SDOT / SMMLA kernels (ops/quant_dot_arm.h)
};

// The one record per storage type: geometry, the activation type its dot product wants and what the kernels do with
// it. Adding a type is a row in dtype.cpp plus its converters and kernels.
struct DTypeInfo {
  DType type;
  std::string_view name;  // as llama.cpp prints it, e.g. "q4_K"
  uint32_t block_size;    // values per block
  uint32_t type_size;     // bytes per block
  bool quantized;
  // The type the other operand is converted to by the integer dot product for this weight type (ggml-cpu's
  // vec_dot_type): Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1 (its s field carries the min term), Q8_K for
  // the k-quants and i-quants, the type itself for f32/f16/bf16 and for types that are never a weight (Q8_K, integers).
  DType vec_dot_type;
  uint32_t caps;  // TypeCap flags

  bool Has(TypeCap c) const { return (caps & c) != 0; }
};

// Geometry of a type, or nullopt for a number the GGUF spec does not define.
std::optional<DTypeInfo> LookupDType(uint32_t raw);
const DTypeInfo& GetDTypeInfo(DType t);  // t must be a defined type
inline std::string_view DTypeName(DType t) {
  return GetDTypeInfo(t).name;
}

// Bytes of one row of `n` values; nullopt when n is not a multiple of the block size.
std::optional<uint64_t> RowBytes(DType t, uint64_t n);

}  // namespace pocketlm
