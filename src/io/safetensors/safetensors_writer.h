// safetensors writer (format: safetensors_reader.h). Tensors and metadata are collected, then written in one pass
// to a temp file that is renamed onto the target (AtomicFileWriter), so an error never leaves a partial file.
// Tensors can be copied in (AddTensor), referenced (AddTensorView: e.g. into a mapped file) or produced at write
// time (AddTensorDeferred), so that writing a large model needs memory for one tensor, not all of them.
//
// As the reference writer does (safetensors/src/tensor.rs, prepare()): the JSON header is padded with spaces to a
// multiple of 8 bytes, and tensors are laid out by decreasing element size, then by name, so every tensor's data
// is aligned to its element size within the file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/safetensors/safetensors_reader.h"

namespace pocketlm {

class SafetensorsWriter {
 public:
  // "__metadata__" entries; setting a key twice keeps the later value.
  void SetMetadata(const std::string& key, std::string value) { metadata_[key] = std::move(value); }

  // Copies the bytes now. `shape` is row-major (last dimension contiguous); nbytes must equal elements * dtype size.
  // Fails on a duplicate or reserved name, a negative dimension or a size mismatch.
  Status AddTensor(const std::string& name, StDType dtype, const std::vector<int64_t>& shape, const void* data,
                   size_t nbytes);
  // Keeps only the pointer: `data` must stay valid until the last WriteFile / ToBytes.
  Status AddTensorView(const std::string& name, StDType dtype, const std::vector<int64_t>& shape, const void* data,
                       size_t nbytes);
  // fill(dst) writes the tensor's nbytes bytes when the file is written, one tensor at a time; its error stops the
  // write (nothing is left at the target).
  using FillFn = std::function<Status(uint8_t* dst)>;
  Status AddTensorDeferred(const std::string& name, StDType dtype, const std::vector<int64_t>& shape, size_t nbytes,
                           FillFn fill);

  // Fails (before touching the file system) when a name or metadata string is not valid UTF-8.
  Status WriteFile(const std::string& path) const;
  Result<std::vector<uint8_t>> ToBytes() const;

 private:
  struct Tensor {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
    size_t nbytes = 0;
    std::vector<uint8_t> data;      // AddTensor
    const uint8_t* view = nullptr;  // AddTensorView
    FillFn fill;                    // AddTensorDeferred
  };
  Status Check(const std::string& name, StDType dtype, const std::vector<int64_t>& shape, size_t nbytes) const;
  // The tensor's bytes: its own, the view, or `fill` run into *buf.
  Result<const uint8_t*> Bytes(const Tensor& t, std::vector<uint8_t>* buf) const;
  // The padded header (without its 8-byte size) and the tensors in file order.
  Result<std::string> Header(std::vector<const Tensor*>* order) const;

  std::map<std::string, std::string> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace pocketlm
