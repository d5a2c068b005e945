// The converters of every DType, in dtype.cpp's order (a test checks the order; the geometry is dtype.cpp's alone).
#include <array>
#include <string>

#include "tensor/quant/quant.h"

namespace pocketlm::quant {

namespace {

template <DType T>
constexpr QuantTraits Row() {
  return {T, &DequantizeRow<T>, &QuantizeRow<T>};
}
// A type whose quantizer also takes an importance matrix.
template <DType T>
constexpr QuantTraits Weighted() {
  return {T, &DequantizeRow<T>, &QuantizeRow<T>, &QuantizeRowWeighted<T>};
}
// A type that can only be written with an importance matrix (llama-quantize refuses it without one).
template <DType T>
constexpr QuantTraits WeightedOnly() {
  return {T, &DequantizeRow<T>, nullptr, &QuantizeRowWeighted<T>};
}
// A type pocketlm cannot convert yet (ternary types, integers).
constexpr QuantTraits NoConverter(DType t) {
  return {t, nullptr, nullptr};
}

using D = DType;
// One entry per line (clang-format off): a type's converters change on its own line.
// clang-format off
constexpr std::array<QuantTraits, 31> kTraits = {{
    Row<D::kF32>(),
    Row<D::kF16>(),
    Weighted<D::kQ4_0>(),
    Weighted<D::kQ4_1>(),
    Weighted<D::kQ5_0>(),
    Weighted<D::kQ5_1>(),
    Row<D::kQ8_0>(),
    Row<D::kQ8_1>(),
    Weighted<D::kQ2_K>(),
    Weighted<D::kQ3_K>(),
    Weighted<D::kQ4_K>(),
    Weighted<D::kQ5_K>(),
    Weighted<D::kQ6_K>(),
    Row<D::kQ8_K>(),
    WeightedOnly<D::kIQ2_XXS>(),
    WeightedOnly<D::kIQ2_XS>(),
    Weighted<D::kIQ3_XXS>(),
    WeightedOnly<D::kIQ1_S>(),
    Weighted<D::kIQ4_NL>(),
    Weighted<D::kIQ3_S>(),
    WeightedOnly<D::kIQ2_S>(),
    Weighted<D::kIQ4_XS>(),
    NoConverter(D::kI8),
    NoConverter(D::kI16),
    NoConverter(D::kI32),
    NoConverter(D::kI64),
    NoConverter(D::kF64),
    WeightedOnly<D::kIQ1_M>(),
    Row<D::kBF16>(),
    NoConverter(D::kTQ1_0),
    NoConverter(D::kTQ2_0),
}};
// clang-format on

enum class Direction { kRead, kWrite };

Status CheckRow(const QuantTraits& t, int64_t n, bool has_fn, Direction dir) {
  const DTypeInfo& info = GetDTypeInfo(t.type);
  if (!has_fn && dir == Direction::kRead) {
    return pocketlm::Unsupported("pocketlm cannot read tensors of type " + std::string(info.name) +
                                 " yet; convert the model to q8_0, q4_K or another k-quant with llama-quantize");
  }
  if (!has_fn) {
    // The caller chose the output type (a read-only type too): name ones that can be written.
    return pocketlm::Unsupported("pocketlm cannot write tensors of type " + std::string(info.name) +
                                 " yet; choose q8_0, q4_K or another k-quant as the output type");
  }
  if (n < 0 || n % info.block_size != 0) {
    return InvalidArgument("row of " + std::to_string(n) + " values is not a multiple of the " +
                           std::string(info.name) + " block size " + std::to_string(info.block_size));
  }
  return Status::Ok();
}

}  // namespace

const QuantTraits& GetQuantTraits(DType t) {
  for (const auto& row : kTraits) {
    if (row.type == t) return row;
  }
  return kTraits[0];  // unreachable for a defined DType
}

std::string ReadableTypeNames() {
  std::string out;
  for (const QuantTraits& t : kTraits) {
    if (t.dequantize_row == nullptr) continue;
    out += (out.empty() ? "" : ", ") + std::string(GetDTypeInfo(t.type).name);
  }
  return out;
}

const QuantTraits* QuantTraitsTable(int* count) {
  *count = static_cast<int>(kTraits.size());
  return kTraits.data();
}

Status DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  const QuantTraits& tr = GetQuantTraits(t);
  Status s = CheckRow(tr, n, tr.dequantize_row != nullptr, Direction::kRead);
  if (s.ok()) tr.dequantize_row(src, dst, n);
  return s;
}

Status QuantizeRow(DType t, const float* src, void* dst, int64_t n) {
  return QuantizeRow(t, src, dst, n, nullptr);
}

bool NeedsImportanceMatrix(DType t) {
  const QuantTraits& tr = GetQuantTraits(t);
  return tr.quantize_row == nullptr && tr.quantize_row_weighted != nullptr;
}

Status QuantizeRow(DType t, const float* src, void* dst, int64_t n, const float* weights) {
  const QuantTraits& tr = GetQuantTraits(t);
  if (weights == nullptr && NeedsImportanceMatrix(t)) {
    return InvalidArgument(std::string(GetDTypeInfo(t).name) +
                           " quantization needs an importance matrix (the model's activation statistics)");
  }
  const bool weighted = weights != nullptr && tr.quantize_row_weighted != nullptr;
  Status s = CheckRow(tr, n, weighted || tr.quantize_row != nullptr, Direction::kWrite);
  if (!s.ok()) return s;
  if (weighted) {
    tr.quantize_row_weighted(src, dst, n, weights);
  } else {
    tr.quantize_row(src, dst, n);
  }
  return s;
}

}  // namespace pocketlm::quant
