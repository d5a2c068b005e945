// Memory mapping of a whole file, read-only. Weights are used in place (zero copy); the file is never written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace pocketlm {

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // [p, p + n) (inside the mapping) made writable for this process only: the mapping is private, so written pages
  // become anonymous copies (counted in RSS instead of the file's pages) and the file does not change.
  Result<uint8_t*> MakeWritable(const uint8_t* p, size_t n);

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace pocketlm
