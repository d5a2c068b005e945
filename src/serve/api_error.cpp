#include "serve/api_error.h"

namespace pocketlm::serve {

nlohmann::json ApiError::ToJson() const {
  using nlohmann::json;
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

ApiError ErrorFromStatus(const Status& s, std::string param) {
  ApiError e;
  e.message = s.message();
  e.param = std::move(param);
  const auto server_side = [&e](int http_status, const char* code) {
    e.http_status = http_status;
    e.type = "server_error";
    e.code = code;
  };
  switch (s.code()) {
    case ErrorCode::kNotFound: e.http_status = 404; break;
    case ErrorCode::kOutOfRange: e.code = "context_length_exceeded"; break;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
    case ErrorCode::kCorrupt: break;
    case ErrorCode::kUnavailable: server_side(503, "unavailable"); break;
    case ErrorCode::kIo: server_side(500, ""); break;
    case ErrorCode::kInternal: server_side(500, "internal_error"); break;
    case ErrorCode::kOk:
      server_side(500, "internal_error");
      e.message = "internal error: an OK status reported as an error";
      break;
  }
  return e;
}

ApiError BadRequest(std::string message, std::string param, std::string code) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError NotFoundError(std::string message, std::string param, std::string code) {
  return ApiError{404, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError ServerError(std::string message) {
  return ApiError{500, std::move(message), "server_error", "", ""};
}

}  // namespace pocketlm::serve
