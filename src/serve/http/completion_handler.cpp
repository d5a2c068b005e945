// POST /v1/chat/completions and /v1/completions: parse, prepare, queue, then either wait for the whole text or
// stream it as server-sent events while the scheduler produces it.
#include <chrono>
#include <ctime>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "serve/http/http_internal.h"
#include "serve/openai_json.h"

namespace pocketlm::serve {
namespace {

using std::chrono::milliseconds;

// Decrements in_flight when the response is complete, whichever way it ends.
struct InFlight {
  explicit InFlight(std::atomic<int>& n) : n_(n) { n_.fetch_add(1); }
  ~InFlight() { n_.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  std::atomic<int>& n_;
};

void RespondWhole(const ResponseMeta& meta, JobChannel& channel, httplib::Response& res) {
  std::string text;
  std::vector<JobEvent> events;
  for (;;) {
    events.clear();
    channel.Wait(&events, milliseconds(500));
    for (JobEvent& e : events) {
      if (e.kind == JobEvent::kText) {
        text += e.text;
      } else if (e.kind == JobEvent::kError) {
        return SendError(res, ErrorFromStatus(e.error));
      } else {
        return SendJson(res, 200, CompletionJson(meta, text, e.finish, Usage{e.n_prompt, e.n_generated, e.n_cached}));
      }
    }
  }
}

// What a streaming response needs after the handler has returned (httplib calls the provider later).
struct Stream {
  ResponseMeta meta;
  std::shared_ptr<JobChannel> channel;
  bool include_usage = false;
  bool started = false;
  std::unique_ptr<InFlight> in_flight;
};

// Writes whatever events are ready (waiting briefly for the first); false when the client has gone.
bool StreamStep(Stream& s, httplib::DataSink& sink) {
  auto write = [&](const std::string& data) { return sink.write(data.data(), data.size()); };
  if (!s.started) {
    s.started = true;
    if (s.meta.endpoint == Endpoint::kChat && !write(SseData(RoleChunkJson(s.meta)))) return false;
  }
  std::vector<JobEvent> events;
  if (!s.channel->Wait(&events, milliseconds(200))) return true;  // nothing yet; httplib calls again
  for (const JobEvent& e : events) {
    if (e.kind == JobEvent::kText) {
      if (!write(SseData(TextChunkJson(s.meta, e.text)))) return false;
      continue;
    }
    if (e.kind == JobEvent::kError) {
      // Headers are sent already: the error goes in the stream, as OpenAI does; its SDKs raise it as APIError.
      if (!write(SseData(ErrorFromStatus(e.error).ToJson()))) return false;
    } else {
      if (!write(SseData(FinishChunkJson(s.meta, e.finish)))) return false;
      if (s.include_usage && !write(SseData(UsageChunkJson(s.meta, Usage{e.n_prompt, e.n_generated, e.n_cached})))) {
        return false;
      }
    }
    if (!write(std::string(kSseDone))) return false;
    sink.done();
    return true;
  }
  return true;
}

}  // namespace

void HandleCompletion(ServerState& st, const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  ParsedRequest parsed = ParseCompletionRequest(req.body, endpoint);
  if (auto* e = std::get_if<ApiError>(&parsed)) return SendError(res, *e);
  const CompletionRequest& r = std::get<CompletionRequest>(parsed);
  auto prepared = PrepareJob(r, st.env);
  if (auto* e = std::get_if<ApiError>(&prepared)) return SendError(res, *e);
  GenerationJob& job = std::get<GenerationJob>(prepared);

  ResponseMeta meta;
  meta.endpoint = endpoint;
  meta.id = (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(st.started) + "-" +
            std::to_string(st.next_id.fetch_add(1));
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = r.model.empty() ? st.registry->base_id() : r.model;
  auto channel = std::make_shared<JobChannel>();
  job.channel = channel;

  auto in_flight = std::make_unique<InFlight>(st.in_flight);
  switch (st.scheduler->Submit(std::move(job))) {
    case Scheduler::SubmitResult::kQueued: break;
    case Scheduler::SubmitResult::kQueueFull:
      return SendError(res, ApiError{429,
                                     "too many requests are waiting (" + std::to_string(st.options.max_queue) +
                                         " queued); retry later",
                                     "rate_limit_error", "", "queue_full"});
    case Scheduler::SubmitResult::kShuttingDown:
      return SendError(res, ErrorFromStatus(Unavailable("the server is shutting down")));
  }
  if (!r.stream) return RespondWhole(meta, *channel, res);

  auto stream = std::make_shared<Stream>();
  stream->meta = meta;
  stream->channel = channel;
  stream->include_usage = r.include_usage;
  stream->in_flight = std::move(in_flight);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t, httplib::DataSink& sink) {
        try {
          return StreamStep(*stream, sink);
        } catch (const std::exception&) {  // e.g. out of memory: end this stream, keep serving
          return false;
        }
      },
      // Called once the response ends, also when the client disconnected: stop generating for nobody.
      [stream](bool) {
        stream->channel->Cancel();
        stream->in_flight.reset();
      });
}

}  // namespace pocketlm::serve
