// Writes a file so that readers see either the old contents or the complete new contents, never a partial
// file: data goes to "<path>.tmp-<pid>" and is renamed over the target only after a successful flush.
#pragma once

#include <cstdio>
#include <string>

#include "base/status.h"

namespace pocketlm {

class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> Create(const std::string& path);

  AtomicFileWriter() = default;
  AtomicFileWriter(AtomicFileWriter&& o) noexcept { *this = std::move(o); }
  AtomicFileWriter& operator=(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();  // removes the temp file unless Commit() succeeded

  Status Write(const void* data, size_t n);
  Status WriteZeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // Flushes, fsyncs and renames the temp file onto the target path.
  Status Commit();

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  std::string tmp_path_;
  uint64_t written_ = 0;
};

}  // namespace pocketlm
