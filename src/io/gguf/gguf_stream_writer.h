// GGUF v3 writer for files too big to hold in memory: the metadata and the tensor directory (names, types and
// shapes, so every size and offset is known up front) are written first, then each tensor's bytes are streamed in
// order, in as many pieces as the caller likes. Everything goes to a temp file that is renamed onto the target by
// Commit(); an error, or destruction without Commit(), removes it, so a partial file is never left behind.
//
// Layout written (ggml's docs/gguf.md): header, key/values in the given order, tensor infos, zero padding to
// `alignment`, then each tensor's data padded to `alignment`. The caller's key/values are written as given; set
// `general.alignment` among them when the alignment is not the default 32.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/atomic_file.h"
#include "base/status.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm {

struct GgufTensorDecl {
  std::string name;
  DType type = DType::kF32;
  std::vector<int64_t> ne;  // ggml order, ne[0] contiguous; 1 to 4 dimensions
};

class GgufStreamWriter {
 public:
  // Validates the tensor shapes, creates the temp file and writes everything up to the first tensor's data.
  static Result<GgufStreamWriter> Create(const std::string& path, uint32_t alignment,
                                         const std::vector<std::pair<std::string, GgufOwnedValue>>& kvs,
                                         std::vector<GgufTensorDecl> tensors);

  // Bytes of tensor i as declared (whole blocks of its type).
  uint64_t TensorBytes(size_t i) const { return sizes_[i]; }
  size_t n_tensors() const { return tensors_.size(); }

  // Appends the next bytes of the current tensor; moving past its declared size is an error. When a tensor is
  // complete its padding is written and the next tensor becomes current.
  Status Append(const void* data, size_t n);
  // Checks that every tensor got exactly its bytes, then flushes and renames onto the target path.
  Status Commit();

 private:
  AtomicFileWriter file_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  std::vector<GgufTensorDecl> tensors_;
  std::vector<uint64_t> sizes_;
  size_t current_ = 0;    // index of the tensor being written
  uint64_t written_ = 0;  // bytes of the current tensor written so far
};

}  // namespace pocketlm
