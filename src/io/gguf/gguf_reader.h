// Zero-copy GGUF reader. Every count, offset, size and shape is checked against the file before it is used;
// errors name the file and the field. Tensor data stays in the read-only mapping.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "io/gguf/gguf_types.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

class GgufFile {
 public:
  static Result<GgufFile> Open(const std::string& path);
  // Parses bytes owned by the caller-provided buffer (tests and fuzzers); `name` appears in errors.
  static Result<GgufFile> FromBytes(std::vector<uint8_t> bytes, const std::string& name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }

  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // [p, p + n) of this file's bytes (e.g. a tensor's data) made writable in memory only; the file is not changed.
  Result<uint8_t*> MutableBytes(const uint8_t* p, size_t n);

  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // Typed getters. Integers of any width convert when the value fits; errors name key, type and file.
  Result<int64_t> GetInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;  // f32, f64 or any integer
  Result<bool> GetBool(std::string_view key) const;
  Result<std::string_view> GetString(std::string_view key) const;
  Result<const GgufValue*> GetArray(std::string_view key, GgufType elem_type) const;
  // Getters with a default for optional keys (still an error when present with a wrong type).
  Result<int64_t> GetInt(std::string_view key, int64_t fallback) const;
  Result<double> GetFloat(std::string_view key, double fallback) const;
  Result<bool> GetBool(std::string_view key, bool fallback) const;

 private:
  Status Parse(const uint8_t* data, size_t size);

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;          // file-backed
  std::unique_ptr<std::vector<uint8_t>> bytes_;  // memory-backed
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// "[n_out=4096, n_in=...]"-style shape string for messages, e.g. "[64, 32000]".
std::string ShapeString(const GgufTensorInfo& t);

// The tensor as a weight view into the file's bytes.
TensorView ViewOf(const GgufTensorInfo& t);

}  // namespace pocketlm
