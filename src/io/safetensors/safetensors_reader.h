// Zero-copy safetensors reader (Hugging Face's format, github.com/huggingface/safetensors README):
//   u64 little-endian N, N bytes of UTF-8 JSON header, then the byte buffer.
//   header = {"<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//             "__metadata__": {"<key>": "<string value>", ...}}   (__metadata__ optional)
// Offsets are relative to the start of the byte buffer; shapes are row-major (PyTorch order: the last dimension is
// contiguous); values are little-endian.
//
// Every field is checked before use, as the reference reader (safetensors/src/tensor.rs, Metadata::validate) does:
// header size at most 100 MB and within the file, a JSON object, known dtypes, non-negative integer shapes whose
// element count does not overflow, end - begin == elements * dtype size, and offsets that tile the byte buffer
// exactly (sorted by offset, each tensor starts where the previous one ended, the last ends at the end of the file,
// so no overlaps and no gaps). Duplicate keys, which JSON parsers would silently collapse, are errors too.
// Errors name the file and, where there is one, the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace pocketlm {

// The dtypes of the safetensors spec (names as written in headers). Only F32, F16 and BF16 can be used by
// pocketlm; the others are recognised so that a file holding them opens and the error comes when one is used.
enum class StDType : uint8_t {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64
};

std::string_view StDTypeName(StDType t);
uint32_t StDTypeSize(StDType t);  // bytes per element
std::optional<StDType> ParseStDType(std::string_view name);
// The GGUF/ggml type holding the same values, for F32, F16 and BF16; nullopt for the others.
std::optional<DType> StDTypeToDType(StDType t);
std::optional<StDType> DTypeToStDType(DType t);

struct StTensor {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;  // row-major: shape.back() is contiguous
  std::span<const uint8_t> bytes;
  uint64_t begin = 0;  // data_offsets, relative to the byte buffer

  int64_t n_elements() const;  // 1 for a scalar (empty shape); never overflows (checked at open)
};

class SafetensorsFile {
 public:
  // Maximum header size the reference implementation accepts (MAX_HEADER_SIZE in safetensors/src/tensor.rs).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  static Result<SafetensorsFile> Open(const std::string& path);
  // Parses bytes held by the returned object (tests and fuzzers); `name` appears in errors.
  static Result<SafetensorsFile> FromBytes(std::vector<uint8_t> bytes, const std::string& name);

  const std::string& path() const { return name_; }
  uint64_t file_size() const { return size_; }
  uint64_t header_size() const { return header_size_; }  // N

  // In order of their data offsets.
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor's values as f32 (F32, F16 and BF16 convert exactly); an "unsupported dtype" error for the others.
  Result<std::vector<float>> ReadF32(const StTensor& t) const;
  // An "unsupported dtype" error naming the file and tensor unless the dtype is F32, F16 or BF16.
  Status CheckUsable(const StTensor& t) const;

 private:
  Status Parse(const uint8_t* data, size_t size);

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;
  std::unique_ptr<std::vector<uint8_t>> bytes_;
  uint64_t size_ = 0;
  uint64_t header_size_ = 0;
  std::vector<StTensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// "[64, 8]"-style shape string for messages.
std::string StShapeString(const std::vector<int64_t>& shape);

}  // namespace pocketlm
