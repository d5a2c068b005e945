#include "convert/json_file.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/atomic_file.h"

namespace pocketlm::convert {

Result<std::string> ReadTextFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return NotFound("'" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError("cannot read '" + path + "'");
  return text;
}

Result<Json> ReadJsonFile(const std::string& path) {
  PLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt("'" + path + "' is not valid JSON");
  if (!j.is_object()) return Corrupt("'" + path + "' is not a JSON object");
  return j;
}

Result<std::optional<Json>> ReadOptionalJsonFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<Json>();
  PLM_ASSIGN_OR_RETURN(Json j, ReadJsonFile(path));
  return std::optional<Json>(std::move(j));
}

Status WriteTextFile(const std::string& path, const std::string& text) {
  PLM_ASSIGN_OR_RETURN(AtomicFileWriter f, AtomicFileWriter::Create(path));
  PLM_RETURN_IF_ERROR(f.Write(text.data(), text.size()));
  return f.Commit();
}

std::optional<int64_t> JsonInt(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<double> JsonNumber(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::optional<std::string> JsonString(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<bool> JsonBool(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

Json FloatJson(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

}  // namespace pocketlm::convert
