// Errors as values: library code returns Status or Result<T> and never aborts on input it did not create.
// A message says what was wrong and, where it can, what to do about it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace pocketlm {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,  // caller passed something unusable (bad option, bad request)
  kNotFound,         // a file, key or tensor that should exist does not
  kCorrupt,          // a file's bytes contradict its own header or the format spec
  kUnsupported,      // well-formed, but a feature pocketlm does not (yet) implement
  kIo,               // the operating system refused (open, read, mmap, write, rename)
  kOutOfRange,       // a size or position beyond a limit (context length, file size)
  kUnavailable,      // refused for now, not for what was asked: shutting down, cancelled; retrying later may work
  kInternal,         // a broken invariant inside pocketlm (a bug): the message is for a bug report
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prepends context ("while loading X: ") so errors read from outermost to innermost cause.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {ErrorCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {ErrorCode::kNotFound, std::move(m)};
}
inline Status Corrupt(std::string m) {
  return {ErrorCode::kCorrupt, std::move(m)};
}
inline Status Unsupported(std::string m) {
  return {ErrorCode::kUnsupported, std::move(m)};
}
inline Status IoError(std::string m) {
  return {ErrorCode::kIo, std::move(m)};
}
inline Status OutOfRange(std::string m) {
  return {ErrorCode::kOutOfRange, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {ErrorCode::kUnavailable, std::move(m)};
}
inline Status Internal(std::string m) {
  return {ErrorCode::kInternal, std::move(m)};
}

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace pocketlm

#define PLM_CONCAT_INNER(a, b) a##b
#define PLM_CONCAT(a, b) PLM_CONCAT_INNER(a, b)

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define PLM_RETURN_IF_ERROR(...)                    \
  do {                                              \
    ::pocketlm::Status plm_status_ = (__VA_ARGS__); \
    if (!plm_status_.ok()) return plm_status_;      \
  } while (0)

// `PLM_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define PLM_ASSIGN_OR_RETURN(lhs, ...) PLM_ASSIGN_OR_RETURN_IMPL(PLM_CONCAT(plm_result_, __LINE__), lhs, __VA_ARGS__)
#define PLM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, ...) \
  auto tmp = (__VA_ARGS__);                      \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
