// RunServer for builds without cpp-httplib: an honest error instead of a server.
#include "serve/http/http_server.h"

namespace pocketlm::serve {

Status RunServer(const ServeOptions&) {
  return Unsupported(
      "this pocketlm was built without cpp-httplib, so it has no HTTP server (install "
      "libcpp-httplib-dev and reconfigure)");
}

}  // namespace pocketlm::serve
