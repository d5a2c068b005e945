#include "base/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pocketlm {

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& path) {
  AtomicFileWriter w;
  w.path_ = path;
  w.tmp_path_ = path + ".tmp-" + std::to_string(::getpid());
  w.file_ = std::fopen(w.tmp_path_.c_str(), "wb");
  if (w.file_ == nullptr) {
    return IoError("cannot create '" + w.tmp_path_ + "': " + std::strerror(errno) +
                   " (is the output directory writable?)");
  }
  return w;
}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& o) noexcept {
  if (this != &o) {
    // Abandon our own temp file (as the destructor would) without ending the members' lifetimes.
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_path_.c_str());
    }
    file_ = o.file_;
    path_ = std::move(o.path_);
    tmp_path_ = std::move(o.tmp_path_);
    written_ = o.written_;
    o.file_ = nullptr;
    o.tmp_path_.clear();
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_path_.c_str());
  }
}

Status AtomicFileWriter::Write(const void* data, size_t n) {
  if (file_ == nullptr) return IoError("write to a closed file '" + path_ + "'");
  if (n != 0 && std::fwrite(data, 1, n, file_) != n) {
    return IoError("cannot write '" + tmp_path_ + "': " + std::strerror(errno));
  }
  written_ += n;
  return Status::Ok();
}

Status AtomicFileWriter::WriteZeros(size_t n) {
  static const char kZeros[256] = {};
  while (n > 0) {
    size_t k = n < sizeof(kZeros) ? n : sizeof(kZeros);
    PLM_RETURN_IF_ERROR(Write(kZeros, k));
    n -= k;
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return IoError("commit of a closed file '" + path_ + "'");
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  int e = errno;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) {
    std::remove(tmp_path_.c_str());
    return IoError("cannot flush '" + tmp_path_ + "': " + std::strerror(e));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    e = errno;
    std::remove(tmp_path_.c_str());
    return IoError("cannot rename '" + tmp_path_ + "' to '" + path_ + "': " + std::strerror(e));
  }
  return Status::Ok();
}

}  // namespace pocketlm
