// C API: sessions (a Context over a shared model), the active adapter set, and raw evaluation.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "capi/capi_internal.h"

namespace pocketlm::capi {

Status EvalAppend(plm_session* s, std::vector<int32_t> tokens, std::vector<float>* logits) {
  RepairSequence(s);
  if (s->pending >= 0) tokens.insert(tokens.begin(), s->pending);
  PLM_RETURN_IF_ERROR(s->ctx->Eval(tokens, /*all_logits=*/false, logits));
  s->history.insert(s->history.end(), tokens.begin(), tokens.end());
  s->pending = -1;
  return Status::Ok();
}

void ResetSequence(plm_session* s) {
  s->ctx->Reset();
  s->history.clear();
  s->pending = -1;
}

void RepairSequence(plm_session* s) {
  if (static_cast<int64_t>(s->history.size()) != s->ctx->n_past()) ResetSequence(s);
}

}  // namespace pocketlm::capi

using pocketlm::ActiveLora;
using pocketlm::Status;
using pocketlm::capi::FromStatus;
using pocketlm::capi::Guard;
using pocketlm::capi::Null;
using pocketlm::capi::TooSmall;

extern "C" {

plm_session_params plm_session_default_params(void) {
  plm_session_params p;
  p.n_threads = 0;
  p.n_ctx = 0;
  return p;
}

plm_status plm_session_create(plm_model* model, const plm_session_params* params, plm_session** out_session) {
  if (out_session != nullptr) *out_session = nullptr;
  return Guard([&]() -> Status {
    if (model == nullptr) return Null("model");
    if (out_session == nullptr) return Null("out_session");
    const plm_session_params p = params != nullptr ? *params : plm_session_default_params();
    const plm_model_params& d = model->state->defaults;
    if (p.n_threads < 0) return pocketlm::InvalidArgument("n_threads must be >= 0");
    if (p.n_ctx < 0) return pocketlm::InvalidArgument("n_ctx must be >= 0");
    pocketlm::ContextParams cp;
    cp.n_threads = p.n_threads > 0 ? p.n_threads : d.n_threads;
    cp.n_ctx = p.n_ctx > 0 ? p.n_ctx : d.n_ctx;
    auto s = std::make_unique<plm_session>();
    s->model = model->state;
    PLM_ASSIGN_OR_RETURN(s->ctx, pocketlm::Context::Create(*model->state->model, cp));
    *out_session = s.release();
    return Status::Ok();
  });
}

void plm_session_free(plm_session* session) {
  delete session;
}

plm_status plm_session_reset(plm_session* session) {
  return Guard([&]() -> Status {
    if (session == nullptr) return Null("session");
    pocketlm::capi::ResetSequence(session);
    return Status::Ok();
  });
}

plm_status plm_session_get_position(const plm_session* session, int32_t* n_past, int32_t* n_ctx) {
  return Guard([&]() -> Status {
    if (session == nullptr) return Null("session");
    if (n_past != nullptr) *n_past = session->ctx->n_past();
    if (n_ctx != nullptr) *n_ctx = session->ctx->n_ctx();
    return Status::Ok();
  });
}

plm_status plm_session_set_adapters(plm_session* session, const plm_adapter_scale* adapters, size_t n_adapters) {
  return Guard([&]() -> Status {
    if (session == nullptr) return Null("session");
    if (adapters == nullptr && n_adapters > 0) return Null("adapters");
    std::vector<ActiveLora> active;
    active.reserve(n_adapters);
    for (size_t i = 0; i < n_adapters; ++i) {
      const plm_adapter* a = adapters[i].adapter;
      if (a == nullptr) return pocketlm::InvalidArgument("adapters[" + std::to_string(i) + "].adapter is NULL");
      if (a->model != session->model) {
        return pocketlm::InvalidArgument("adapters[" + std::to_string(i) + "] ('" + a->adapter->path() +
                                         "') was loaded for another model than the session's");
      }
      if (!std::isfinite(adapters[i].scale)) {
        return pocketlm::InvalidArgument("adapters[" + std::to_string(i) + "].scale is not finite");
      }
      active.push_back({a->adapter.get(), adapters[i].scale});
    }
    const bool same =
        active.size() == session->active.size() &&
        std::equal(active.begin(), active.end(), session->active.begin(), [](const ActiveLora& x, const ActiveLora& y) {
          return x.adapter == y.adapter && x.scale == y.scale;
        });
    if (same) return Status::Ok();  // keeps the cache, which was computed under exactly this set
    std::vector<std::shared_ptr<const pocketlm::LoraAdapter>> keep;
    keep.reserve(n_adapters);
    for (size_t i = 0; i < n_adapters; ++i) keep.push_back(adapters[i].adapter->adapter);
    PLM_RETURN_IF_ERROR(session->ctx->SetAdapters(active));  // empties the cache
    session->active = std::move(active);
    session->keep = std::move(keep);
    session->history.clear();
    session->pending = -1;
    return Status::Ok();
  });
}

plm_status plm_session_eval(plm_session* session, const int32_t* tokens, size_t n_tokens, float* logits,
                            size_t capacity) {
  return Guard([&]() -> plm_status {
    if (session == nullptr) return FromStatus(Null("session"));
    if (tokens == nullptr && n_tokens > 0) return FromStatus(Null("tokens"));
    const auto n_vocab = static_cast<size_t>(session->ctx->model().config().n_vocab);
    if (logits != nullptr && capacity < n_vocab) {
      return TooSmall("logits need " + std::to_string(n_vocab) + " floats but the buffer holds " +
                      std::to_string(capacity));
    }
    PLM_RETURN_IF_ERROR_C(
        pocketlm::capi::EvalAppend(session, std::vector<int32_t>(tokens, tokens + n_tokens), &session->logits));
    if (logits != nullptr) std::memcpy(logits, session->logits.data(), n_vocab * sizeof(float));
    return FromStatus(Status::Ok());
  });
}

}  // extern "C"
