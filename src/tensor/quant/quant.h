// Row conversion between f32 and every GGUF storage type pocketlm reads: the converters of each DType (ggml's
// type_traits to_float / from_float_ref; the type's other facts are its record in tensor/dtype.h).
//
// Dequantization reproduces ggml's dequantize_row_* bit for bit (same operation order, f16 via F16ToF32).
// Quantization reproduces llama-quantize's bytes: QuantizeRow is ggml's path without an importance matrix
// (quantize_qX_K(..., imatrix = NULL) calls quantize_row_qX_K_ref; IQ4_NL/IQ4_XS run the best-scale search with
// ntry = 7), QuantizeRowWeighted the quantize_row_*_impl path with one. The lattice i-quants IQ1_S, IQ1_M, IQ2_XXS,
// IQ2_XS and IQ2_S have only the weighted one (llama-quantize refuses them without a matrix).
//
// Row length `n` counts values and must be a multiple of the type's block size; the checked entry points at the
// bottom verify that, the raw function pointers do not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tensor/dtype.h"

namespace pocketlm::quant {

// dst[0..n) = the values of the blocks at src.
template <DType T>
void DequantizeRow(const void* src, float* dst, int64_t n);
// Blocks at dst (n / block_size of them) = the reference quantization of src[0..n).
template <DType T>
void QuantizeRow(const float* src, void* dst, int64_t n);

#define PLM_QUANT_DECLARE(T)                                            \
  template <>                                                           \
  void DequantizeRow<DType::T>(const void* src, float* dst, int64_t n); \
  template <>                                                           \
  void QuantizeRow<DType::T>(const float* src, void* dst, int64_t n);
PLM_QUANT_DECLARE(kF32)
PLM_QUANT_DECLARE(kF16)
PLM_QUANT_DECLARE(kBF16)
PLM_QUANT_DECLARE(kQ4_0)  // legacy.cpp
PLM_QUANT_DECLARE(kQ4_1)
PLM_QUANT_DECLARE(kQ5_0)
PLM_QUANT_DECLARE(kQ5_1)
PLM_QUANT_DECLARE(kQ8_0)
PLM_QUANT_DECLARE(kQ8_1)
PLM_QUANT_DECLARE(kQ2_K)  // kquants_low.cpp
PLM_QUANT_DECLARE(kQ3_K)
PLM_QUANT_DECLARE(kQ4_K)  // kquants_high.cpp
PLM_QUANT_DECLARE(kQ5_K)
PLM_QUANT_DECLARE(kQ6_K)
PLM_QUANT_DECLARE(kQ8_K)
PLM_QUANT_DECLARE(kIQ4_NL)  // iquants.cpp
PLM_QUANT_DECLARE(kIQ4_XS)
PLM_QUANT_DECLARE(kIQ3_XXS)  // iq3_quantize.cpp (reference = no importance matrix; dequantizer in iquants_lattice.cpp)
PLM_QUANT_DECLARE(kIQ3_S)
#undef PLM_QUANT_DECLARE

// Types pocketlm reads and writes only with an importance matrix (QuantizeRowWeighted below): no QuantizeRow.
#define PLM_QUANT_DECLARE_WEIGHTED_ONLY(T) \
  template <>                              \
  void DequantizeRow<DType::T>(const void* src, float* dst, int64_t n);
PLM_QUANT_DECLARE_WEIGHTED_ONLY(kIQ2_XXS)  // iquants_lattice.cpp
PLM_QUANT_DECLARE_WEIGHTED_ONLY(kIQ2_XS)
PLM_QUANT_DECLARE_WEIGHTED_ONLY(kIQ2_S)
PLM_QUANT_DECLARE_WEIGHTED_ONLY(kIQ1_S)
PLM_QUANT_DECLARE_WEIGHTED_ONLY(kIQ1_M)
#undef PLM_QUANT_DECLARE_WEIGHTED_ONLY

// Importance-weighted quantization of one row: ggml's quantize_<type>(src, dst, 1, n, imatrix) with an importance
// matrix, i.e. the quantize_row_<type>_impl path llama-quantize takes when given --imatrix. `weights[0..n)` are the
// matrix's values for the row's columns (the same for every row of a tensor). Defined only for the types whose
// ggml quantizer reads the matrix (not f16/bf16/q8_0/q8_K); see QuantTraits::quantize_row_weighted.
template <DType T>
void QuantizeRowWeighted(const float* src, void* dst, int64_t n, const float* weights);
#define PLM_QUANT_DECLARE_WEIGHTED(T) \
  template <>                         \
  void QuantizeRowWeighted<DType::T>(const float* src, void* dst, int64_t n, const float* weights);
PLM_QUANT_DECLARE_WEIGHTED(kQ4_0)  // legacy_weighted.cpp
PLM_QUANT_DECLARE_WEIGHTED(kQ4_1)
PLM_QUANT_DECLARE_WEIGHTED(kQ5_0)
PLM_QUANT_DECLARE_WEIGHTED(kQ5_1)
PLM_QUANT_DECLARE_WEIGHTED(kQ2_K)  // kquants_weighted.cpp
PLM_QUANT_DECLARE_WEIGHTED(kQ3_K)
PLM_QUANT_DECLARE_WEIGHTED(kQ4_K)
PLM_QUANT_DECLARE_WEIGHTED(kQ5_K)
PLM_QUANT_DECLARE_WEIGHTED(kQ6_K)
PLM_QUANT_DECLARE_WEIGHTED(kIQ4_NL)  // iquants.cpp
PLM_QUANT_DECLARE_WEIGHTED(kIQ4_XS)
PLM_QUANT_DECLARE_WEIGHTED(kIQ2_XXS)  // iq2_quantize.cpp
PLM_QUANT_DECLARE_WEIGHTED(kIQ2_XS)
PLM_QUANT_DECLARE_WEIGHTED(kIQ2_S)
PLM_QUANT_DECLARE_WEIGHTED(kIQ1_S)
PLM_QUANT_DECLARE_WEIGHTED(kIQ1_M)
PLM_QUANT_DECLARE_WEIGHTED(kIQ3_XXS)  // iq3_quantize.cpp
PLM_QUANT_DECLARE_WEIGHTED(kIQ3_S)
#undef PLM_QUANT_DECLARE_WEIGHTED

using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);
using QuantizeRowWeightedFn = void (*)(const float* src, void* dst, int64_t n, const float* weights);

// The converters of one type (its geometry and dot-product partner are in tensor/dtype.h's record). A type has a
// dequantizer and at least one quantizer, or neither (types pocketlm cannot convert); never a quantizer alone.
struct QuantTraits {
  DType type;
  DequantizeRowFn dequantize_row;  // nullptr: pocketlm cannot read this type yet
  QuantizeRowFn quantize_row;      // reference quantizer; nullptr: cannot write this type without weights
  // Importance-weighted quantizer; nullptr: the type ignores an importance matrix (f16, q8_0) or cannot be written.
  // A type with only this one (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M) needs a matrix, as in llama-quantize.
  QuantizeRowWeightedFn quantize_row_weighted = nullptr;
};

// Traits of every defined DType (never null for a defined enum value).
const QuantTraits& GetQuantTraits(DType t);
// The whole table, one entry per DType in dtype.cpp's order (for tests).
const QuantTraits* QuantTraitsTable(int* count);

// The types pocketlm can read (with a dequantizer), comma-separated, as the registry names them: for messages.
std::string ReadableTypeNames();

// Checked conversions: InvalidArgument when n is not a multiple of the block size, Unsupported when pocketlm
// has no converter for the type.
Status DequantizeRow(DType t, const void* src, float* dst, int64_t n);
Status QuantizeRow(DType t, const float* src, void* dst, int64_t n);
// With an importance matrix row `weights[0..n)` (nullptr = none): the weighted quantizer when the type has one,
// else the reference one. InvalidArgument when the type needs weights and got none.
Status QuantizeRow(DType t, const float* src, void* dst, int64_t n, const float* weights);
// Whether quantizing to `t` needs an importance matrix (the type has only a weighted quantizer).
bool NeedsImportanceMatrix(DType t);

}  // namespace pocketlm::quant
