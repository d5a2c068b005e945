// The HTTP server: routes, limits, signal handling and shutdown. Every handler runs inside Guarded(), so no
// exception reaches cpp-httplib's worker threads: a failure becomes a 500 JSON error, never a crash.
#include "serve/http_server.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <thread>

#include "serve/http_internal.h"
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

void HandleLoadAdapter(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return SendError(res, BadRequest("the request body must be a JSON object {\"name\", \"path\"}"));
  }
  auto name = body.find("name"), path = body.find("path");
  if (name == body.end() || !name->is_string()) return SendError(res, BadRequest("'name' must be a string", "name"));
  if (path == body.end() || !path->is_string()) return SendError(res, BadRequest("'path' must be a string", "path"));
  const std::string n = name->get<std::string>();
  if (Status s = st.registry->Load(n, path->get<std::string>()); !s.ok()) {
    return SendError(res, ErrorFromStatus(s, "path"));
  }
  std::fprintf(stderr, "serve: loaded adapter '%s' from %s\n", n.c_str(), path->get<std::string>().c_str());
  SendJson(res, 200, json{{"id", n}, {"object", "model"}, {"parent", st.registry->base_id()}, {"loaded", true}});
}

void HandleUnloadAdapter(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.matches[1];
  if (Status s = st.registry->Unload(name); !s.ok()) return SendError(res, ErrorFromStatus(s, "name"));
  std::fprintf(stderr, "serve: unloaded adapter '%s'\n", name.c_str());
  SendJson(res, 200, json{{"id", name}, {"object", "model"}, {"deleted", true}});
}

void Route(ServerState& st, httplib::Server& svr) {
  svr.Post("/v1/chat/completions", Guarded([&st](const httplib::Request& req, httplib::Response& res) {
             HandleCompletion(st, req, res, Endpoint::kChat);
           }));
  svr.Post("/v1/completions", Guarded([&st](const httplib::Request& req, httplib::Response& res) {
             HandleCompletion(st, req, res, Endpoint::kCompletion);
           }));
  svr.Get("/v1/models", Guarded([&st](const httplib::Request&, httplib::Response& res) { HandleModels(st, res); }));
  svr.Get("/health", Guarded([&st](const httplib::Request&, httplib::Response& res) { HandleHealth(st, res); }));
  if (st.options.admin) {
    svr.Post("/admin/adapters",
             Guarded([&st](const httplib::Request& req, httplib::Response& res) { HandleLoadAdapter(st, req, res); }));
    svr.Delete(R"(/admin/adapters/([^/]+))", Guarded([&st](const httplib::Request& req, httplib::Response& res) {
                 HandleUnloadAdapter(st, req, res);
               }));
  }
  // Statuses httplib sets itself (404 no route, 413 body too large, 400 bad HTTP) get a JSON body too; ours
  // already have one.
  svr.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
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
  PLM_ASSIGN_OR_RETURN(st->model, Model::Load(o.model_path, {.interleave_for_inference = true}));
  const std::string id = !o.alias.empty() ? o.alias : std::filesystem::path(o.model_path).stem().string();
  st->registry = std::make_unique<AdapterRegistry>(*st->model, id, o.adapter_budget_bytes);
  for (const auto& [name, path] : o.adapters) {
    PLM_RETURN_IF_ERROR(st->registry->Load(name, path).WithContext("--lora " + name + "=" + path));
  }
  // The chat template: named, or recognized from the model's metadata. Without one the server still serves
  // /v1/completions; chat requests get a 400 that says what to do.
  st->env.chat_template_status = Status::Ok();
  if (!o.chat_template.empty()) {
    PLM_ASSIGN_OR_RETURN(st->env.chat_template, ChatTemplateFromName(o.chat_template));
  } else if (auto jinja = st->model->file().GetString("tokenizer.chat_template"); !jinja.ok()) {
    st->env.chat_template_status =
        InvalidArgument("the model has no tokenizer.chat_template; restart the server with --chat-template NAME");
  } else if (auto kind = DetectChatTemplate(jinja.value()); !kind.ok()) {
    st->env.chat_template_status = InvalidArgument(
        "the model's chat template is not one pocketlm has built in; restart the server with --chat-template NAME");
  } else {
    st->env.chat_template = kind.value();
  }
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
  if (o.max_tokens < 1) return InvalidArgument("--max-tokens must be >= 1");
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
  if (!st.env.chat_template_status.ok()) {
    std::fprintf(stderr, "serve: warning: /v1/chat/completions is off: %s\n",
                 st.env.chat_template_status.message().c_str());
  }
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
