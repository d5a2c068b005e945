// The HTTP server: routes, limits, signal handling and shutdown. Every handler runs inside Guarded(), so no
// exception reaches cpp-httplib's worker threads: a failure becomes a 500 JSON error, never a crash.
#include "serve/http/http_server.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <thread>

#include "model/chat_format_choice.h"
#include "serve/auth.h"
#include "serve/http/http_internal.h"
#include "serve/openai_json.h"

namespace pocketlm::serve {

void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(Dump(body), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) {
  SendJson(res, e.http_status, e.ToJson());
}

namespace {

using nlohmann::json;

template <typename F>
auto Guarded(F body) {
  return [body](const httplib::Request& req, httplib::Response& res) {
    try {
      body(req, res);
    } catch (const std::bad_alloc&) {
      SendError(res, ServerError("out of memory"));
    } catch (const std::exception& e) {
      SendError(res, ServerError(std::string("internal error: ") + e.what()));
    } catch (...) {
      SendError(res, ServerError("internal error"));
    }
  };
}

void HandleModels(ServerState& st, httplib::Response& res) {
  std::vector<ModelEntry> models{{st.registry->base_id(), ""}};
  for (const auto& [name, adapter] : st.registry->List()) models.push_back({name, st.registry->base_id()});
  SendJson(res, 200, ModelListJson(models, st.started));
}

void HandleHealth(ServerState& st, httplib::Response& res) {
  const Scheduler::Load l = st.scheduler->load();
  SendJson(res, 200,
           json{{"status", "ok"},
                {"model", st.registry->base_id()},
                {"slots", st.options.parallel},
                {"active", l.active},
                {"queued", l.queued}});
}

// The admin endpoints without --adapter-dir: 404 with the code of any route this server does not have, rather
// than 403. No credential would change the answer (the switch is the operator's command line), and a 403 would
// tell a prober that something guarded is there to break into. The message says how to turn them on; with API
// keys set, only clients holding a key get this far (the key check runs before routing).
ApiError AdminOff() {
  return NotFoundError(
      "the admin API is off: the server loads adapters at run time only when started with an adapter directory", "",
      "unknown_url");
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// POST /admin/adapters {"name": NAME, "path": FILE}: FILE is relative to --adapter-dir (auth.h's
// ResolveAdapterPath refuses everything else alike).
void HandleLoadAdapter(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  if (st.adapter_dir.empty()) return SendError(res, AdminOff());
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return SendError(res, BadRequest("the request body must be a JSON object {\"name\", \"path\"}"));
  }
  auto name = body.find("name"), path = body.find("path");
  if (name == body.end() || !name->is_string()) return SendError(res, BadRequest("'name' must be a string", "name"));
  if (path == body.end() || !path->is_string()) {
    return SendError(res, BadRequest("'path' must be a string: a file name relative to the adapter directory", "path"));
  }
  const std::string n = name->get<std::string>();
  const std::string requested = path->get<std::string>();
  Result<std::string> file = ResolveAdapterPath(st.adapter_dir, requested);
  if (!file.ok()) return SendError(res, ErrorFromStatus(file.status(), "path"));
  if (Status s = st.registry->Load(n, *file); !s.ok()) {
    // The loader names the file by its absolute path; say it as the client did, without the server's layout.
    return SendError(res, ErrorFromStatus(Status(s.code(), ReplaceAll(s.message(), *file, requested)), "path"));
  }
  std::fprintf(stderr, "serve: loaded adapter '%s' from %s\n", n.c_str(), file->c_str());
  SendJson(res, 200, json{{"id", n}, {"object", "model"}, {"parent", st.registry->base_id()}, {"loaded", true}});
}

void HandleUnloadAdapter(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  if (st.adapter_dir.empty()) return SendError(res, AdminOff());
  const std::string name = req.matches[1];
  if (Status s = st.registry->Unload(name); !s.ok()) return SendError(res, ErrorFromStatus(s, "name"));
  std::fprintf(stderr, "serve: unloaded adapter '%s'\n", name.c_str());
  SendJson(res, 200, json{{"id", name}, {"object", "model"}, {"deleted", true}});
}

// API keys (auth.h): true when the request was refused with a 401. It runs once httplib has read the whole
// request, in each handler and, for a path with no route, in the error handler (so that without a key every path
// gets 401 and a client cannot probe which endpoints exist). Not in a pre-routing handler: cpp-httplib 0.11 leaves
// a body it has not read on the connection and parses it as the next request (seen: a refused POST answered by a
// 401 and then a stray 400 on the same kept-alive connection).
bool RefusedForKey(const ServerState& st, const httplib::Request& req, httplib::Response& res) {
  if (st.options.api_keys.empty() || !AuthRequired(req.path)) return false;
  const AuthResult r = CheckApiKey(req.get_header_value("Authorization"), st.options.api_keys);
  if (r == AuthResult::kOk) return false;
  res.set_header("WWW-Authenticate", "Bearer");  // RFC 6750 section 3: a 401 names the scheme it wants
  SendError(res, AuthError(r));
  return true;
}

// A handler behind the key check (AuthRequired decides which paths need one), run Guarded.
template <typename F>
auto Keyed(const ServerState& st, F body) {
  return Guarded([&st, body](const httplib::Request& req, httplib::Response& res) {
    if (!RefusedForKey(st, req, res)) body(req, res);
  });
}

void Route(ServerState& st, httplib::Server& svr) {
  svr.Post("/v1/chat/completions", Keyed(st, [&st](const httplib::Request& req, httplib::Response& res) {
             HandleCompletion(st, req, res, Endpoint::kChat);
           }));
  svr.Post("/v1/completions", Keyed(st, [&st](const httplib::Request& req, httplib::Response& res) {
             HandleCompletion(st, req, res, Endpoint::kCompletion);
           }));
  svr.Get("/v1/models", Keyed(st, [&st](const httplib::Request&, httplib::Response& res) { HandleModels(st, res); }));
  svr.Get("/health", Keyed(st, [&st](const httplib::Request&, httplib::Response& res) { HandleHealth(st, res); }));
  // Routed even when off, so that the 404 says how to turn them on (AdminOff).
  svr.Post("/admin/adapters",
           Keyed(st, [&st](const httplib::Request& req, httplib::Response& res) { HandleLoadAdapter(st, req, res); }));
  svr.Delete(R"(/admin/adapters/([^/]+))", Keyed(st, [&st](const httplib::Request& req, httplib::Response& res) {
               HandleUnloadAdapter(st, req, res);
             }));
  // Statuses httplib sets itself (404 no route, 413 body too large, 400 bad HTTP) get a JSON body too; ours
  // already have one.
  svr.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404 && RefusedForKey(st, req, res)) return;
    ApiError e{res.status, "HTTP " + std::to_string(res.status), "invalid_request_error", "", ""};
    if (res.status == 404) {
      e.message = "no endpoint " + req.method + " " + req.path;
      e.code = "unknown_url";
    } else if (res.status == 413) {
      e.message = "the request body is larger than " + std::to_string(st.options.max_body_bytes) + " bytes";
      e.code = "request_too_large";
    } else if (res.status >= 500) {
      e.type = "server_error";
    }
    SendError(res, e);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, ServerError("internal error"));
  });
}

Status Setup(const ServeOptions& o, ServerState* st) {
  st->options = o;
  if (!o.adapter_dir.empty()) {
    PLM_ASSIGN_OR_RETURN(st->adapter_dir, CanonicalAdapterDir(o.adapter_dir));
  }
  PLM_ASSIGN_OR_RETURN(st->model, Model::Load(o.model_path, {.interleave_for_inference = true}));
  const std::string id = !o.alias.empty() ? o.alias : std::filesystem::path(o.model_path).stem().string();
  st->registry = std::make_unique<AdapterRegistry>(*st->model, id, o.adapter_budget_bytes);
  for (const auto& [name, path] : o.adapters) {
    PLM_RETURN_IF_ERROR(st->registry->Load(name, path, AdapterRegistry::Removal::kPinned)
                            .WithContext("adapter " + name + " (" + path + ")"));
  }
  // The chat template, by the rule every front end shares; markers the vocabulary lacks are spelled as text, as
  // llama-server does, so chat requests are always served.
  PLM_ASSIGN_OR_RETURN(st->env.chat_format, ChooseChatFormat(*st->model, o.chat_template, MissingMarkers::kAsText));
  SchedulerOptions so;
  so.parallel = o.parallel;
  so.max_queue = o.max_queue;
  so.context.n_threads = o.threads;
  so.context.n_ctx = o.ctx;
  PLM_ASSIGN_OR_RETURN(st->scheduler, Scheduler::Create(*st->model, so));
  st->env.model = st->model.get();
  st->env.registry = st->registry.get();
  st->env.n_ctx = st->scheduler->n_ctx();
  st->env.max_tokens_cap = o.max_tokens;
  st->started = static_cast<int64_t>(std::time(nullptr));
  return Status::Ok();
}

// One line per protection, once at start (never a key itself), and a warning when the server is reachable from
// other machines with no key.
void PrintProtections(const ServerState& st) {
  const ServeOptions& o = st.options;
  const size_t n_keys = o.api_keys.size();
  if (n_keys > 0) {
    std::fprintf(stderr, "serve: API key required (%zu key%s)\n", n_keys, n_keys == 1 ? "" : "s");
  } else {
    std::fprintf(stderr, "serve: no API key: every endpoint is open to whoever can connect\n");
  }
  if (st.adapter_dir.empty()) {
    std::fprintf(stderr, "serve: admin API off (no adapter directory)\n");
  } else {
    std::fprintf(stderr, "serve: admin API loads adapters from %s\n", st.adapter_dir.c_str());
  }
  if (n_keys == 0 && !IsLoopbackHost(o.host)) {
    std::fprintf(stderr,
                 "serve: warning: listening on %s, which other machines may reach, without an API key: anyone who "
                 "can connect may use the server%s; set an API key\n",
                 o.host.c_str(), st.adapter_dir.empty() ? "" : " and load adapters");
  }
}

// Waits for SIGINT/SIGTERM (blocked in every thread, so only this thread receives them), then shuts down in
// stages: refuse new requests, let the ones in flight finish (until a second signal or the grace period), cancel
// what is left, stop the listener.
void AwaitSignals(ServerState& st, httplib::Server& svr, const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  if (svr.is_running()) {
    std::fprintf(stderr, "serve: %s: finishing %d request(s) in flight (signal again to cancel them)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", st.in_flight.load());
  }
  st.scheduler->BeginShutdown();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(st.options.shutdown_grace_seconds);
  const timespec tick{0, 100'000'000};
  while (st.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    if (sigtimedwait(&set, nullptr, &tick) > 0) break;
  }
  st.scheduler->CancelActive();
  svr.stop();
}

// Blocks SIGINT and SIGTERM in the calling thread for its lifetime.
struct SignalMask {
  SignalMask() {
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
  }
  ~SignalMask() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
  SignalMask(const SignalMask&) = delete;
  SignalMask& operator=(const SignalMask&) = delete;
  sigset_t set, old;
};

}  // namespace

Status RunServer(const ServeOptions& o) {
  if (o.max_tokens < 1) return InvalidArgument("the max_tokens limit must be >= 1");
  for (size_t i = 0; i < o.api_keys.size(); ++i) {
    PLM_RETURN_IF_ERROR(ValidateApiKey(o.api_keys[i], "API key " + std::to_string(i + 1)));
  }
  // Block the signals before any thread starts (the scheduler's, the contexts' pools, httplib's): threads inherit
  // the mask, so only AwaitSignals' sigwait receives them and none takes the default action (terminate).
  SignalMask mask;
  ServerState st;
  PLM_RETURN_IF_ERROR(Setup(o, &st));

  httplib::Server svr;
  svr.set_payload_max_length(o.max_body_bytes);
  // Every accepted request holds an HTTP thread while it waits or streams, so there are enough for all active
  // and queued ones; beyond that, clients get 429 from the scheduler rather than waiting in httplib.
  const size_t n_http = static_cast<size_t>(o.parallel + o.max_queue + 4);
  svr.new_task_queue = [n_http] { return new httplib::ThreadPool(n_http); };
  Route(st, svr);

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
  } else if (!svr.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0) {
    st.scheduler->Stop();
    return IoError("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (in use, or not an address here)");
  }
  std::fprintf(stderr, "serve: model '%s', %zu adapter(s), %d slot(s) x %d context positions\n",
               st.registry->base_id().c_str(), st.registry->List().size(), o.parallel, st.env.n_ctx);
  PrintProtections(st);
  std::fprintf(stderr, "serve: %s\n", st.env.chat_format.description.c_str());
  std::fprintf(stderr, "serve: listening on http://%s:%d\n", o.host.c_str(), port);

  std::thread signals([&] { AwaitSignals(st, svr, mask.set); });
  const bool listened = svr.listen_after_bind();
  if (signals.joinable()) {
    if (!listened) pthread_kill(signals.native_handle(), SIGTERM);  // wake it if no signal came
    signals.join();
  }
  st.scheduler->Stop();
  std::fprintf(stderr, "serve: stopped\n");
  if (!listened) return IoError("the HTTP server stopped unexpectedly");
  return Status::Ok();
}

}  // namespace pocketlm::serve
