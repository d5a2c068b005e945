// GGUF v3 writer. Metadata and tensors are collected, then written in one pass to a temp file that is renamed
// onto the target, so a failed or interrupted write never leaves a partial file behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_types.h"

namespace pocketlm {

// An owned metadata value (the reader's GgufValue points into a file).
struct GgufOwnedValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  GgufType elem_type = GgufType::kU8;
  std::vector<uint8_t> raw;           // numeric array payload, little-endian
  std::vector<std::string> strings;   // string array payload
  std::vector<GgufOwnedValue> items;  // nested arrays
  uint64_t count = 0;

  static GgufOwnedValue FromView(const GgufValue& v);
};

class GgufWriter {
 public:
  // `alignment` must be a power of two; anything else falls back to the default of 32.
  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment)
      : alignment_(alignment != 0 && (alignment & (alignment - 1)) == 0 ? alignment : kGgufDefaultAlignment) {}

  // Setting a key twice replaces the earlier value (keys stay unique in the output).
  void Set(const std::string& key, GgufOwnedValue v);
  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, std::string v);
  void SetStringArray(const std::string& key, std::vector<std::string> v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);

  // The bytes are copied now; `ne` is in ggml order (ne[0] contiguous). Fails on a shape the type cannot hold.
  Status AddTensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data,
                   size_t nbytes);

  Status WriteFile(const std::string& path) const;
  // Serializes to memory (tests, fuzz corpora).
  std::vector<uint8_t> ToBytes() const;

 private:
  struct Tensor {  // public to the serializer in the .cpp
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufOwnedValue>> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace pocketlm
