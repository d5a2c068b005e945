// Reading the JSON files of a Hugging Face model directory. nlohmann::json reports errors by throwing; these helpers
// are the boundary: every parse error becomes a Status naming the file.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"

namespace pocketlm::convert {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses `path`; NotFound when it does not exist, Corrupt when it is not JSON (or not an object).
Result<Json> ReadJsonFile(const std::string& path);
// nullopt when the file does not exist; an error when it exists but does not parse.
Result<std::optional<Json>> ReadOptionalJsonFile(const std::string& path);
// The whole file as text; NotFound when absent.
Result<std::string> ReadTextFile(const std::string& path);
// Writes text atomically (temp file + rename).
Status WriteTextFile(const std::string& path, const std::string& text);

// Typed lookups that never throw: nullopt when the key is absent, null, or of another type.
std::optional<int64_t> JsonInt(const Json& j, const char* key);
std::optional<double> JsonNumber(const Json& j, const char* key);
std::optional<std::string> JsonString(const Json& j, const char* key);
std::optional<bool> JsonBool(const Json& j, const char* key);

// Shortest decimal text that reads back as the same float ("1e-05", not "9.999999747378752e-06"), as a JSON number.
Json FloatJson(float v);

}  // namespace pocketlm::convert
