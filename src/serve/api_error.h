// Errors as the OpenAI API returns them: an HTTP status and the body {"error": {"message", "type", "param",
// "code"}} (platform.openai.com/docs/guides/error-codes; the shape every OpenAI SDK parses into APIError).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

namespace pocketlm::serve {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";  // OpenAI's types: invalid_request_error, rate_limit_error, ...
  std::string param;                           // the request field at fault; "" -> null
  std::string code;                            // machine-readable reason; "" -> null

  nlohmann::json ToJson() const;
};

// The one map from an engine Status to an API error, wherever in a request's life it happens: kNotFound -> 404;
// kInvalidArgument / kOutOfRange / kUnsupported / kCorrupt -> 400 (they describe what the caller sent or named);
// kUnavailable -> 503 (shutting down); kIo (the server's own files) and kInternal -> 500; kOk is a caller bug -> 500.
ApiError ErrorFromStatus(const Status& s, std::string param = "");

ApiError BadRequest(std::string message, std::string param = "", std::string code = "");
ApiError NotFoundError(std::string message, std::string param, std::string code);
ApiError ServerError(std::string message);

}  // namespace pocketlm::serve
