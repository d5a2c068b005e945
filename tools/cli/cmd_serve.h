// `pocketlm serve`: the OpenAI-compatible HTTP server (src/serve/http/http_server.h).
#pragma once

#include <string>
#include <vector>

#include "option_table.h"
#include "serve/http/http_server.h"

namespace pocketlm::cli {

struct ServeCliOptions {
  serve::ServeOptions o;
  std::vector<std::string> lora;  // NAME=PATH
  std::vector<std::string> api_keys;
  std::string api_key_file;
  int max_body_kib = 1024;
  int adapter_budget_mib = 0;
  bool no_admin = false;  // hidden: the admin API is off by default now; kept so that scripts passing it still start

  void Declare(Options& o);
};

// Keys come from --api-key, --api-key-file and the environment variable POCKETLM_API_KEY together.
int ServeCommand(const ServeCliOptions& opts);

}  // namespace pocketlm::cli
