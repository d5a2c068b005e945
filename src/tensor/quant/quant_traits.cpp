// The traits table: one row per DType, in dtype.cpp's order. Geometry must agree with dtype.cpp (a test checks);
// vec_dot_type follows ggml-cpu's type_traits_cpu.
#include <array>
#include <string>

#include "tensor/quant/quant.h"

namespace pocketlm::quant {

namespace {

template <DType T>
constexpr QuantTraits Row(std::string_view name, uint32_t block_size, uint32_t type_size, DType vec_dot) {
  return {T, name, block_size, type_size, &DequantizeRow<T>, &QuantizeRow<T>, vec_dot};
}
// A type pocketlm cannot convert yet (the i-quants with lattice codebooks, ternary types, integers).
constexpr QuantTraits NoConverter(DType t, std::string_view name, uint32_t block_size, uint32_t type_size,
                                  DType vec_dot) {
  return {t, name, block_size, type_size, nullptr, nullptr, vec_dot};
}

using D = DType;
constexpr std::array<QuantTraits, 31> kTraits = {{
    Row<D::kF32>("f32", 1, 4, D::kF32),
    Row<D::kF16>("f16", 1, 2, D::kF16),
    Row<D::kQ4_0>("q4_0", 32, 18, D::kQ8_0),
    Row<D::kQ4_1>("q4_1", 32, 20, D::kQ8_1),
    Row<D::kQ5_0>("q5_0", 32, 22, D::kQ8_0),
    Row<D::kQ5_1>("q5_1", 32, 24, D::kQ8_1),
    Row<D::kQ8_0>("q8_0", 32, 34, D::kQ8_0),
    Row<D::kQ8_1>("q8_1", 32, 36, D::kQ8_1),
    Row<D::kQ2_K>("q2_K", 256, 84, D::kQ8_K),
    Row<D::kQ3_K>("q3_K", 256, 110, D::kQ8_K),
    Row<D::kQ4_K>("q4_K", 256, 144, D::kQ8_K),
    Row<D::kQ5_K>("q5_K", 256, 176, D::kQ8_K),
    Row<D::kQ6_K>("q6_K", 256, 210, D::kQ8_K),
    Row<D::kQ8_K>("q8_K", 256, 292, D::kQ8_K),
    NoConverter(D::kIQ2_XXS, "iq2_xxs", 256, 66, D::kQ8_K),
    NoConverter(D::kIQ2_XS, "iq2_xs", 256, 74, D::kQ8_K),
    NoConverter(D::kIQ3_XXS, "iq3_xxs", 256, 98, D::kQ8_K),
    NoConverter(D::kIQ1_S, "iq1_s", 256, 50, D::kQ8_K),
    Row<D::kIQ4_NL>("iq4_nl", 32, 18, D::kQ8_0),
    NoConverter(D::kIQ3_S, "iq3_s", 256, 110, D::kQ8_K),
    NoConverter(D::kIQ2_S, "iq2_s", 256, 82, D::kQ8_K),
    Row<D::kIQ4_XS>("iq4_xs", 256, 136, D::kQ8_K),
    NoConverter(D::kI8, "i8", 1, 1, D::kI8),
    NoConverter(D::kI16, "i16", 1, 2, D::kI16),
    NoConverter(D::kI32, "i32", 1, 4, D::kI32),
    NoConverter(D::kI64, "i64", 1, 8, D::kI64),
    NoConverter(D::kF64, "f64", 1, 8, D::kF64),
    NoConverter(D::kIQ1_M, "iq1_m", 256, 56, D::kQ8_K),
    Row<D::kBF16>("bf16", 1, 2, D::kBF16),
    NoConverter(D::kTQ1_0, "tq1_0", 256, 54, D::kQ8_K),
    NoConverter(D::kTQ2_0, "tq2_0", 256, 66, D::kQ8_K),
}};

Status CheckRow(const QuantTraits& t, int64_t n, bool has_fn, const char* what) {
  if (!has_fn) {
    return pocketlm::Unsupported(std::string("pocketlm cannot ") + what + " tensors of type " + std::string(t.name) +
                                 " yet; convert the model to q8_0, q4_K or another k-quant with llama-quantize");
  }
  if (n < 0 || n % t.block_size != 0) {
    return InvalidArgument("row of " + std::to_string(n) + " values is not a multiple of the " + std::string(t.name) +
                           " block size " + std::to_string(t.block_size));
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

const QuantTraits* QuantTraitsTable(int* count) {
  *count = static_cast<int>(kTraits.size());
  return kTraits.data();
}

Status DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  const QuantTraits& tr = GetQuantTraits(t);
  Status s = CheckRow(tr, n, tr.dequantize_row != nullptr, "read");
  if (s.ok()) tr.dequantize_row(src, dst, n);
  return s;
}

Status QuantizeRow(DType t, const float* src, void* dst, int64_t n) {
  const QuantTraits& tr = GetQuantTraits(t);
  Status s = CheckRow(tr, n, tr.quantize_row != nullptr, "write");
  if (s.ok()) tr.quantize_row(src, dst, n);
  return s;
}

}  // namespace pocketlm::quant
