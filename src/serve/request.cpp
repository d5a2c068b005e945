#include "serve/request.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

namespace pocketlm::serve {
namespace {

using nlohmann::json;

// Typed access to the fields of one JSON object. Each getter returns false and records a 400 error (first one
// wins) on a wrong type or value; an absent field or JSON null leaves the output untouched and returns true.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}

  const json* Find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  bool Fail(const std::string& param, const std::string& message) {
    if (!error_) error_ = BadRequest(message, param);
    return false;
  }
  bool String(const char* key, std::string* out) {
    const json* v = Find(key);
    if (v == nullptr) return true;
    if (!v->is_string()) return Fail(key, std::string("'") + key + "' must be a string");
    *out = v->get<std::string>();
    return true;
  }
  bool Bool(const char* key, bool* out) {
    const json* v = Find(key);
    if (v == nullptr) return true;
    if (!v->is_boolean()) return Fail(key, std::string("'") + key + "' must be true or false");
    *out = v->get<bool>();
    return true;
  }
  // A number in [lo, hi]; open bounds when lo_open / hi_open.
  bool Number(const char* key, double lo, double hi, float* out, bool lo_open = false) {
    const json* v = Find(key);
    if (v == nullptr) return true;
    const double x = v->is_number() ? v->get<double>() : std::nan("");
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) {
      return Fail(key, std::string("'") + key + "' must be a number in " + (lo_open ? "(" : "[") + Fmt(lo) + ", " +
                           Fmt(hi) + "]");
    }
    *out = static_cast<float>(x);
    return true;
  }
  bool Int(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    const json* v = Find(key);
    if (v == nullptr) return true;
    bool fits = false;
    int64_t x = 0;
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      fits = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      x = static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
      fits = true;
      x = v->get<int64_t>();
    }
    if (!fits || x < lo || x > hi) {
      return Fail(key, std::string("'") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
    }
    *out = x;
    return true;
  }
  const std::optional<ApiError>& error() const { return error_; }

 private:
  static std::string Fmt(double x) {
    std::string s = std::to_string(x);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  const json& obj_;
  std::optional<ApiError> error_;
};

// Message content: a string, or an array of content parts of which only {"type": "text", "text": ...} is
// supported (platform.openai.com/docs/api-reference/chat/create, messages[].content).
std::optional<ApiError> ParseContent(const json& content, const std::string& where, std::string* out) {
  if (content.is_null()) return std::nullopt;  // an assistant turn without text
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return BadRequest(where + " must be a string or an array of text parts", where);
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string pw = where + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return BadRequest(pw + " must be an object", pw);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || type->get<std::string>() != "text") {
      return BadRequest(pw + ": only {\"type\": \"text\"} content parts are supported", pw);
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) return BadRequest(pw + ".text must be a string", pw + ".text");
    *out += text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> ParseMessages(const json& body, std::vector<ChatMessage>* out) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return BadRequest("'messages' must be a non-empty array", "messages");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return BadRequest(where + " must be an object", where);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return BadRequest(where + ".role must be a string", where + ".role");
    std::string role_name = role->get<std::string>();
    if (role_name == "developer") role_name = "system";  // OpenAI's newer name for system instructions
    auto parsed_role = ChatRoleFromName(role_name);
    if (!parsed_role.ok()) {
      return BadRequest(
          where + ".role '" + role->get<std::string>() + "' is not supported (system, developer, user, assistant)",
          where + ".role");
    }
    ChatMessage msg;
    msg.role = parsed_role.value();
    auto content = m.find("content");
    if (content == m.end()) return BadRequest(where + " has no content", where + ".content");
    if (auto e = ParseContent(*content, where + ".content", &msg.content)) return e;
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

// "prompt": a string, or an array holding exactly one string (OpenAI also allows batches and token arrays,
// which would need n > 1 choices; refused with a clear message).
std::optional<ApiError> ParsePrompt(const json& body, std::string* out) {
  auto it = body.find("prompt");
  if (it != body.end() && it->is_string()) {
    *out = it->get<std::string>();
    return std::nullopt;
  }
  if (it != body.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    *out = (*it)[0].get<std::string>();
    return std::nullopt;
  }
  return BadRequest("'prompt' must be a string (or an array of exactly one string)", "prompt");
}

std::optional<ApiError> ParseStop(const json& body, std::vector<std::string>* out) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    if (!it->get<std::string>().empty()) out->push_back(it->get<std::string>());
    return std::nullopt;
  }
  if (!it->is_array() || it->size() > kMaxStopSequences) {
    return BadRequest("'stop' must be a string or an array of at most 4 strings", "stop");
  }
  for (const json& s : *it) {
    if (!s.is_string()) return BadRequest("'stop' must be a string or an array of at most 4 strings", "stop");
    if (!s.get<std::string>().empty()) out->push_back(s.get<std::string>());
  }
  return std::nullopt;
}

std::optional<ApiError> ParseLora(const json& body, std::vector<LoraRequest>* out) {
  auto it = body.find("lora");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) return BadRequest("'lora' must be an array of {\"name\", \"scale\"} objects", "lora");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    const std::string where = "lora[" + std::to_string(i) + "]";
    if (!e.is_object()) return BadRequest(where + " must be an object", where);
    Fields f(e);
    LoraRequest lr;
    if (!f.String("name", &lr.name) || lr.name.empty()) {
      return BadRequest(where + ".name must be a non-empty string", where + ".name");
    }
    if (!f.Number("scale", -100.0, 100.0, &lr.scale)) {
      return BadRequest(where + ".scale must be a number in [-100, 100]", where + ".scale");
    }
    out->push_back(std::move(lr));
  }
  return std::nullopt;
}

// Features that change the response shape; accepting and ignoring them would return something else than asked.
std::optional<ApiError> RefuseUnsupported(const json& body) {
  auto truthy = [&](const char* key) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return false;
    if (it->is_boolean()) return it->get<bool>();
    if (it->is_array() || it->is_object()) return !it->empty();
    if (it->is_number_integer()) return it->get<int64_t>() != 0;
    return true;
  };
  for (const char* key : {"logprobs", "top_logprobs", "tools", "functions", "echo", "suffix"}) {
    if (truthy(key)) return BadRequest(std::string("'") + key + "' is not supported by pocketlm serve", key);
  }
  auto n = body.find("n");
  if (n != body.end() && !n->is_null() && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    return BadRequest("'n' must be 1: pocketlm serve returns one choice per request", "n");
  }
  auto best_of = body.find("best_of");
  if (best_of != body.end() && !best_of->is_null() && !(best_of->is_number_integer() && best_of->get<int64_t>() == 1)) {
    return BadRequest("'best_of' must be 1", "best_of");
  }
  auto rf = body.find("response_format");
  if (rf != body.end() && !rf->is_null()) {
    if (!rf->is_object() || rf->value("type", json()) != json("text")) {
      return BadRequest("only {\"type\": \"text\"} is supported for 'response_format'", "response_format");
    }
  }
  return std::nullopt;
}

ParsedRequest Parse(const json& body, Endpoint endpoint) {
  if (!body.is_object()) return BadRequest("the request body must be a JSON object");
  if (auto e = RefuseUnsupported(body)) return *e;
  CompletionRequest r;
  r.endpoint = endpoint;
  if (endpoint == Endpoint::kChat) {
    if (auto e = ParseMessages(body, &r.messages)) return *e;
  } else {
    if (auto e = ParsePrompt(body, &r.prompt)) return *e;
  }
  if (auto e = ParseStop(body, &r.stop)) return *e;
  if (auto e = ParseLora(body, &r.lora)) return *e;

  Fields f(body);
  int64_t max_tokens = -1, max_completion_tokens = -1, top_k = r.sampling.top_k, seed = 0;
  float ignored = 0;
  f.String("model", &r.model);
  f.Int("max_tokens", 1, std::numeric_limits<int32_t>::max(), &max_tokens);
  f.Int("max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), &max_completion_tokens);
  f.Number("temperature", 0.0, 2.0, &r.sampling.temperature);
  f.Number("top_p", 0.0, 1.0, &r.sampling.top_p, /*lo_open=*/true);
  f.Int("top_k", 0, std::numeric_limits<int32_t>::max(), &top_k);                       // extension
  f.Number("min_p", 0.0, 1.0, &r.sampling.min_p);                                       // extension
  f.Number("repeat_penalty", 0.0, 10.0, &r.sampling.repeat_penalty, /*lo_open=*/true);  // extension (llama.cpp)
  f.Number("presence_penalty", -2.0, 2.0, &ignored);
  f.Number("frequency_penalty", -2.0, 2.0, &ignored);
  if (f.Find("seed") != nullptr &&
      f.Int("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed)) {
    r.has_seed = true;
    r.sampling.seed = static_cast<uint64_t>(seed);
  }
  f.Bool("stream", &r.stream);
  if (const json* so = f.Find("stream_options")) {
    if (!so->is_object()) {
      f.Fail("stream_options", "'stream_options' must be an object");
    } else {
      Fields sof(*so);
      if (!sof.Bool("include_usage", &r.include_usage)) f.Fail("stream_options.include_usage", sof.error()->message);
    }
  }
  if (f.error()) return *f.error();
  r.sampling.top_k = static_cast<int>(top_k);
  if (r.sampling.min_p >= 1.0f) return BadRequest("'min_p' must be a number in [0, 1)", "min_p");
  // max_completion_tokens replaces the deprecated max_tokens in the chat API; take it when both are sent.
  if (max_completion_tokens > 0) {
    r.max_tokens = static_cast<int>(max_completion_tokens);
  } else if (max_tokens > 0) {
    r.max_tokens = static_cast<int>(max_tokens);
  }
  if (Status s = r.sampling.Validate(); !s.ok()) return BadRequest(s.message());
  return r;
}

}  // namespace

ParsedRequest ParseCompletionRequest(std::string_view body, Endpoint endpoint) {
  json j = json::parse(body, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return BadRequest("the request body is not valid JSON");
  return Parse(j, endpoint);
}

}  // namespace pocketlm::serve
