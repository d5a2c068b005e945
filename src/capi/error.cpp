// Version, status names and the thread-local last error of the C API.
#include <string>

#include "capi/capi_internal.h"

namespace pocketlm::capi {

namespace {

// One message per thread, so concurrent sessions on different threads never see each other's errors.
thread_local std::string t_last_error;

#define PLM_STR_INNER(x) #x
#define PLM_STR(x) PLM_STR_INNER(x)
constexpr const char kVersion[] =
    PLM_STR(PLM_VERSION_MAJOR) "." PLM_STR(PLM_VERSION_MINOR) "." PLM_STR(PLM_VERSION_PATCH);

plm_status ToC(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return PLM_OK;
    case ErrorCode::kInvalidArgument: return PLM_INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return PLM_NOT_FOUND;
    case ErrorCode::kCorrupt: return PLM_CORRUPT;
    case ErrorCode::kUnsupported: return PLM_UNSUPPORTED;
    case ErrorCode::kIo: return PLM_IO;
    case ErrorCode::kOutOfRange: return PLM_OUT_OF_RANGE;
    case ErrorCode::kUnavailable: return PLM_UNAVAILABLE;
    case ErrorCode::kInternal: return PLM_INTERNAL;
  }
  return PLM_INTERNAL;  // a value outside the enum
}

}  // namespace

void SetLastError(const char* message) noexcept {
  try {
    t_last_error = message;
  } catch (...) {
    // Out of memory for the message itself: keep a short text, which fits the small-string buffer.
    t_last_error.clear();
    t_last_error.shrink_to_fit();
    t_last_error = "out of memory";
  }
}

plm_status Fail(plm_status code, const char* message) noexcept {
  SetLastError(message);
  return code;
}

plm_status FromStatus(const Status& s) noexcept {
  if (s.ok()) {
    t_last_error.clear();
    return PLM_OK;
  }
  return Fail(ToC(s.code()), s.message().c_str());
}

plm_status TooSmall(const std::string& message) noexcept {
  return Fail(PLM_BUFFER_TOO_SMALL, message.c_str());
}

}  // namespace pocketlm::capi

extern "C" {

const char* plm_version(void) {
  return pocketlm::capi::kVersion;
}

uint32_t plm_api_version(void) {
  return PLM_API_VERSION;
}

const char* plm_status_name(plm_status status) {
  switch (status) {
    case PLM_OK: return "PLM_OK";
    case PLM_INVALID_ARGUMENT: return "PLM_INVALID_ARGUMENT";
    case PLM_NOT_FOUND: return "PLM_NOT_FOUND";
    case PLM_CORRUPT: return "PLM_CORRUPT";
    case PLM_UNSUPPORTED: return "PLM_UNSUPPORTED";
    case PLM_IO: return "PLM_IO";
    case PLM_OUT_OF_RANGE: return "PLM_OUT_OF_RANGE";
    case PLM_OUT_OF_MEMORY: return "PLM_OUT_OF_MEMORY";
    case PLM_BUFFER_TOO_SMALL: return "PLM_BUFFER_TOO_SMALL";
    case PLM_INTERNAL: return "PLM_INTERNAL";
    case PLM_UNAVAILABLE: return "PLM_UNAVAILABLE";
  }
  return "PLM_UNKNOWN_STATUS";
}

const char* plm_last_error(void) {
  return pocketlm::capi::t_last_error.c_str();
}

}  // extern "C"
