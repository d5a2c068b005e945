// State shared by the HTTP handlers (cpp-httplib builds only).
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "model/model.h"
#include "serve/adapter_registry.h"
#include "serve/api_error.h"
#include "serve/http/http_server.h"
#include "serve/prepare.h"
#include "serve/scheduler.h"

namespace pocketlm::serve {

struct ServerState {
  ServeOptions options;
  std::unique_ptr<Model> model;
  std::unique_ptr<AdapterRegistry> registry;
  std::unique_ptr<Scheduler> scheduler;
  PrepareEnv env;
  std::filesystem::path adapter_dir;  // canonical --adapter-dir; empty = the admin endpoints are off
  int64_t started = 0;                // Unix seconds: "created" of the listed models
  std::atomic<uint64_t> next_id{1};
  // Requests accepted and not yet answered in full (a stream counts until its last byte or disconnect).
  std::atomic<int> in_flight{0};
};

void SendJson(httplib::Response& res, int status, const nlohmann::json& body);
void SendError(httplib::Response& res, const ApiError& e);

// POST /v1/chat/completions and /v1/completions.
void HandleCompletion(ServerState& st, const httplib::Request& req, httplib::Response& res, Endpoint endpoint);

}  // namespace pocketlm::serve
