#include "serve/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "base/utf8.h"

namespace pocketlm::serve {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

}  // namespace

bool ConstantTimeEquals(std::string_view presented, std::string_view key) {
  // One pass over what the client sent, whatever it is: the loop's length is the client's, and each step reads
  // one key byte (cycling, so a short key is not read past its end) with no branch on the data. The length
  // difference is folded into the same accumulator instead of returning early.
  size_t diff = presented.size() ^ key.size();
  for (size_t i = 0; i < presented.size(); ++i) {
    const unsigned char k = key.empty() ? 0 : static_cast<unsigned char>(key[i % key.size()]);
    diff |= static_cast<unsigned char>(presented[i]) ^ k;
  }
  return diff == 0;
}

AuthResult CheckApiKey(std::string_view authorization, const std::vector<std::string>& keys) {
  if (keys.empty()) return AuthResult::kOk;
  const std::string_view value = Trim(authorization);
  if (value.empty()) return AuthResult::kMissing;
  const size_t sp = value.find_first_of(" \t");
  if (!EqualsIgnoreCase(value.substr(0, sp), "bearer")) return AuthResult::kNotBearer;
  const std::string_view token = sp == std::string_view::npos ? std::string_view{} : Trim(value.substr(sp));
  if (token.empty()) return AuthResult::kMissing;
  bool match = false;
  for (const std::string& key : keys) match |= ConstantTimeEquals(token, key);  // `|`: every key is compared
  return match ? AuthResult::kOk : AuthResult::kWrongKey;
}

bool AuthRequired(std::string_view path) {
  return path != "/health";
}

ApiError AuthError(AuthResult r) {
  // OpenAI answers both a missing and a wrong key with 401, type invalid_request_error (its SDKs raise
  // AuthenticationError from the status); code invalid_api_key says which problem it is without parsing prose.
  ApiError e{401, "", "invalid_request_error", "", "invalid_api_key"};
  switch (r) {
    case AuthResult::kMissing:
      e.message = "this server requires an API key: send the header 'Authorization: Bearer YOUR_KEY'";
      break;
    case AuthResult::kNotBearer:
      e.message = "the Authorization header must be 'Bearer YOUR_KEY' (another scheme was sent)";
      break;
    case AuthResult::kWrongKey: e.message = "invalid API key"; break;
    case AuthResult::kOk: e = ServerError("internal error: an accepted API key reported as an error"); break;
  }
  return e;
}

Status ValidateApiKey(std::string_view key, const std::string& source) {
  if (key.empty()) return InvalidArgument(source + ": an API key cannot be empty");
  if (!IsVisibleAscii(key)) {
    return InvalidArgument(source + ": an API key may only hold printable ASCII characters, no spaces");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ParseApiKeyFile(std::string_view text, const std::string& file) {
  std::vector<std::string> keys;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    PLM_RETURN_IF_ERROR(ValidateApiKey(line, "API key file " + file + " line " + std::to_string(line_no)));
    keys.emplace_back(line);
  }
  if (keys.empty()) {
    return InvalidArgument("API key file " + file +
                           ": no key in it (one key per line; blank lines and lines starting with # are ignored)");
  }
  return keys;
}

bool IsLoopbackHost(const std::string& host) {
  if (EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

Result<std::filesystem::path> CanonicalAdapterDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("adapter directory: the name is empty");
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::canonical(dir, ec);
  if (ec) return IoError("adapter directory " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(canonical, ec))
    return InvalidArgument("adapter directory " + dir + ": not a directory");
  return canonical;
}

const char kAdapterPathRefused[] =
    "'path' must name an adapter file inside the server's adapter directory, relative to it (no absolute path, "
    "no '..', no link leading out of the directory)";

Result<std::string> ResolveAdapterPath(const std::filesystem::path& canonical_dir, std::string_view requested) {
  namespace fs = std::filesystem;
  const Status refused = InvalidArgument(kAdapterPathRefused);
  // A NUL byte would end the name early for the OS (and JSON strings may hold one).
  if (requested.empty() || requested.find('\0') != std::string_view::npos) return refused;
  const fs::path rel(requested);
  if (rel.has_root_path()) return refused;  // absolute
  for (const fs::path& part : rel) {
    if (part == "..") return refused;
  }
  // canonical() follows every link and fails for a missing file, a dangling link or a loop; all are refused
  // alike (see the header). Its result is absolute with no "." or ".." left, so containment is a prefix test
  // over whole components.
  std::error_code ec;
  const fs::path target = fs::canonical(canonical_dir / rel, ec);
  if (ec) return refused;
  auto [dir_end, target_it] = std::mismatch(canonical_dir.begin(), canonical_dir.end(), target.begin(), target.end());
  if (dir_end != canonical_dir.end() || target_it == target.end()) return refused;  // outside, or the dir itself
  if (!fs::is_regular_file(target, ec)) return refused;  // a directory, or a FIFO whose open() would block
  return target.string();
}

}  // namespace pocketlm::serve
