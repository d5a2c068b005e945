// A read-only view of a 1-D or 2-D weight tensor stored in any DType, usually inside a mapped GGUF file.
// Shapes follow ggml: ne[0] is the contiguous dimension. A weight matrix of a linear layer y = W x has
// ne[0] = n_in and ne[1] = n_out, i.e. it is stored as n_out rows of n_in values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/dtype.h"

namespace pocketlm {

struct TensorView {
  std::string_view name;
  DType type = DType::kF32;
  int64_t ne[4] = {1, 1, 1, 1};
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  // 16: rows interleaved 16 at a time (tensor/quant/interleave.h; q4_0, q5_0, q8_0, q4_K, q6_K), made at model
  // load for inference; row() does not apply to such rows. Only MatMulWeightsT and DequantizeRow read them (the
  // other matmul entry points serve LoRA factors and training, never interleaved); 0: the GGUF layout.
  int interleave = 0;

  bool empty() const { return data == nullptr; }
  int64_t n_in() const { return ne[0]; }
  int64_t n_out() const { return ne[1] * ne[2] * ne[3]; }
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const {
    const auto& info = GetDTypeInfo(type);
    return static_cast<size_t>(ne[0]) / info.block_size * info.type_size;
  }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
  // Only meaningful for F32 tensors (norm weights, biases).
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

}  // namespace pocketlm
