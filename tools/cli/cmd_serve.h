// `pocketlm serve`: the OpenAI-compatible HTTP server (src/serve/http_server.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "serve/http_server.h"

namespace pocketlm::cli {

struct ServeCliOptions {
  serve::ServeOptions o;
  std::vector<std::string> lora;  // NAME=PATH
  int max_body_kib = 1024;
  int adapter_budget_mib = 0;
  bool no_admin = false;

  void AddTo(CLI::App* app);
};

int ServeCommand(const ServeCliOptions& opts);

}  // namespace pocketlm::cli
