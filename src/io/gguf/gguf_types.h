// GGUF v3 container: value types and the parsed view of a file's metadata and tensor directory.
// Spec: ggml's docs/gguf.md. Layout: header (magic "GGUF", u32 version, u64 n_tensors, u64 n_kv), n_kv
// key/value pairs, n_tensors tensor infos, padding to `general.alignment` (default 32), tensor data.
// All integers are little-endian.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"

namespace pocketlm {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

std::string_view GgufTypeName(GgufType t);
// Byte size of a scalar type; 0 for string and array.
uint32_t GgufScalarSize(GgufType t);

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

// A metadata value. Strings and array payloads point into the file's bytes (valid while the file is open).
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0;    // f32 / f64
  std::string_view str;
  // Arrays: element type and count; numeric payload as raw little-endian bytes, strings as views, nested arrays
  // as values.
  GgufType elem_type = GgufType::kU8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
  std::vector<GgufValue> items;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kF32 || type == GgufType::kF64; }
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  int n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (row) dimension
  DType type = DType::kF32;
  uint64_t offset = 0;            // relative to the start of the data section
  const uint8_t* data = nullptr;  // into the mapped file
  uint64_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

}  // namespace pocketlm
