// The server's two protections, as pure functions so they are tested without sockets (tests/serve/auth_test.cpp):
//
// API keys: with any key set, every endpoint but /health needs `Authorization: Bearer KEY` (RFC 6750, as the
// OpenAI SDKs and llama-server send it); a missing or wrong key gets 401. Keys are compared in time that depends
// only on what the client sent, never on how much of a key it got right.
//
// The adapter directory: POST /admin/adapters loads only regular files inside the directory the operator named
// (--adapter-dir), named by a path relative to it. Every way out (absolute path, `..`, a symbolic link whose target
// is outside) and every name that is not a loadable file gets one and the same refusal, so a client learns nothing
// about files outside the directory, not even whether they exist.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "serve/api_error.h"

namespace pocketlm::serve {

// ---- API keys ----

enum class AuthResult {
  kOk,         // a key matched, or no key is configured
  kMissing,    // no Authorization header, or "Bearer" with no key after it
  kNotBearer,  // an Authorization header with another scheme (Basic, ...)
  kWrongKey,   // "Bearer X" where X is none of the keys
};

// Checks an Authorization header value against `keys`. kOk when `keys` is empty (no key configured). The scheme
// "Bearer" is case-insensitive (RFC 7235 section 2.1); spaces around the value and between scheme and key are
// ignored. Every key is compared, with ConstantTimeEquals, whichever matches.
AuthResult CheckApiKey(std::string_view authorization, const std::vector<std::string>& keys);

// a == b in time that depends on presented.size() only (not on where the first difference is, nor on the key's
// length), so response timing does not reveal a key byte by byte.
bool ConstantTimeEquals(std::string_view presented, std::string_view key);

// Whether `path` (the request's path, without the query) needs a key when keys are set: all but /health, which
// load balancers and readiness probes call without credentials.
bool AuthRequired(std::string_view path);

// The 401 answer for a result other than kOk, shaped as OpenAI answers a bad key: type invalid_request_error,
// code invalid_api_key, param null. The message never contains what the client sent.
ApiError AuthError(AuthResult r);

// A key usable in an HTTP header: not empty, printable ASCII without spaces (0x21..0x7e; RFC 6750's b64token
// is narrower, but servers need not be). `source` names where the key came from (--api-key, a file's line, an
// environment variable) in the error, which never contains the key itself.
Status ValidateApiKey(std::string_view key, const std::string& source);

// The keys of an --api-key-file: one per line, surrounding spaces and a trailing \r dropped; blank lines and
// lines whose first non-space character is # are ignored. Errors name `file` (and the line): no key at all, or a
// key ValidateApiKey refuses.
Result<std::vector<std::string>> ParseApiKeyFile(std::string_view text, const std::string& file);

// Whether `host` (the --host value) only accepts connections from this machine: localhost, 127.0.0.0/8, ::1 and
// ::ffff:127.x.x.x. Anything else, including the wildcards 0.0.0.0 and ::, and other host names, counts as
// reachable from the network.
bool IsLoopbackHost(const std::string& host);

// ---- The adapter directory ----

// The canonical (absolute, symlink-free) form of --adapter-dir DIR, which must be an existing directory. Errors
// name DIR.
Result<std::filesystem::path> CanonicalAdapterDir(const std::string& dir);

// The one message every refused adapter path gets (see ResolveAdapterPath).
extern const char kAdapterPathRefused[];

// The file a client's `requested` path (relative to the adapter directory) names, as a canonical path: the
// caller opens that path, which has no symbolic link left in it. `canonical_dir` comes from CanonicalAdapterDir.
// Refused, all with InvalidArgument(kAdapterPathRefused) and before anything outside the directory is opened:
// an empty path, a NUL byte, an absolute path, any `..` component, a path whose canonical location
// (std::filesystem::canonical, which follows every link) is not strictly inside `canonical_dir`, and a path that
// does not resolve to an existing regular file (missing, a directory, a FIFO, a dangling or looping link). The
// last rule keeps "missing" and "outside" indistinguishable: a dangling link inside the directory that points
// out would otherwise tell, by its error, whether its target exists.
//
// Whoever can write into the directory decides what the server may load (a hard link or a link swapped in after
// this check names any file the server can read): keep it writable by the operator only.
Result<std::string> ResolveAdapterPath(const std::filesystem::path& canonical_dir, std::string_view requested);

}  // namespace pocketlm::serve
