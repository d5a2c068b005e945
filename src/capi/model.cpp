// C API: models, adapters, tokenization.
#include <cstring>
#include <string_view>

#include "capi/capi_internal.h"
#include "model/chat_format_choice.h"

namespace pocketlm::capi {
namespace {

// The chat template used when a call names none, chosen once at load by the rule every front end shares: the
// model's own, else ChatML, its markers spelled as text where the vocabulary lacks them.
Status ChooseTemplate(ModelState* s) {
  PLM_ASSIGN_OR_RETURN(s->chat_format, ChooseChatFormat(*s->model, "", MissingMarkers::kAsText));
  return Status::Ok();
}

}  // namespace
}  // namespace pocketlm::capi

using pocketlm::Status;
using pocketlm::capi::FromStatus;
using pocketlm::capi::Guard;
using pocketlm::capi::Null;
using pocketlm::capi::TooSmall;

extern "C" {

plm_model_params plm_model_default_params(void) {
  plm_model_params p;
  p.n_threads = 0;
  p.n_ctx = 0;
  return p;
}

plm_status plm_model_load(const char* path, const plm_model_params* params, plm_model** out_model) {
  if (out_model != nullptr) *out_model = nullptr;
  return Guard([&]() -> Status {
    if (path == nullptr) return Null("path");
    if (out_model == nullptr) return Null("out_model");
    const plm_model_params p = params != nullptr ? *params : plm_model_default_params();
    if (p.n_threads < 0 || p.n_threads > 512) return pocketlm::InvalidArgument("n_threads must be 0..512");
    if (p.n_ctx < 0) return pocketlm::InvalidArgument("n_ctx must be >= 0");
    auto state = std::make_shared<pocketlm::capi::ModelState>();
    PLM_ASSIGN_OR_RETURN(state->model, pocketlm::Model::Load(path, {.interleave_for_inference = true}));
    state->defaults = p;
    if (state->defaults.n_threads == 0) state->defaults.n_threads = 2;
    auto name = state->model->file().GetString("general.name");
    if (name.ok()) state->name = std::string(name.value());
    PLM_RETURN_IF_ERROR(pocketlm::capi::ChooseTemplate(state.get()));
    *out_model = new plm_model{std::move(state)};
    return Status::Ok();
  });
}

void plm_model_free(plm_model* model) {
  delete model;  // the state lives on while sessions or adapters hold it
}

plm_status plm_model_get_info(const plm_model* model, plm_model_info* out_info) {
  return Guard([&]() -> Status {
    if (model == nullptr) return Null("model");
    if (out_info == nullptr) return Null("out_info");
    const pocketlm::Model& m = *model->state->model;
    const pocketlm::ModelConfig& c = m.config();
    out_info->architecture = c.arch.c_str();
    out_info->name = model->state->name.c_str();
    out_info->n_vocab = c.n_vocab;
    out_info->n_ctx_train = c.n_ctx_train;
    out_info->n_embd = c.n_embd;
    out_info->n_layer = c.n_layer;
    out_info->bos = m.tokenizer().bos();
    out_info->eos = m.tokenizer().eos();
    out_info->eot = m.tokenizer().eot();
    return Status::Ok();
  });
}

plm_status plm_adapter_load(plm_model* model, const char* path, plm_adapter** out_adapter) {
  if (out_adapter != nullptr) *out_adapter = nullptr;
  return Guard([&]() -> Status {
    if (model == nullptr) return Null("model");
    if (path == nullptr) return Null("path");
    if (out_adapter == nullptr) return Null("out_adapter");
    PLM_ASSIGN_OR_RETURN(std::unique_ptr<pocketlm::LoraAdapter> ad, pocketlm::LoraAdapter::Load(path));
    PLM_RETURN_IF_ERROR(ad->CheckAgainst(model->state->model->file(), &model->state->model->lineage()));
    *out_adapter = new plm_adapter{model->state, std::shared_ptr<const pocketlm::LoraAdapter>(std::move(ad))};
    return Status::Ok();
  });
}

void plm_adapter_free(plm_adapter* adapter) {
  delete adapter;  // sessions that have it active hold their own reference
}

plm_status plm_tokenize(const plm_model* model, const char* text, size_t text_len, int32_t add_special,
                        int32_t parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens) {
  return Guard([&]() -> plm_status {
    if (model == nullptr) return FromStatus(Null("model"));
    if (text == nullptr && text_len > 0) return FromStatus(Null("text"));
    if (tokens == nullptr && capacity > 0) return FromStatus(Null("tokens"));
    if (n_tokens == nullptr) return FromStatus(Null("n_tokens"));
    const std::string_view view = text_len > 0 ? std::string_view(text, text_len) : std::string_view();
    auto ids = model->state->model->tokenizer().Encode(view, add_special != 0, parse_special != 0);
    if (!ids.ok()) return FromStatus(ids.status());
    *n_tokens = ids->size();
    if (capacity < ids->size()) {
      return TooSmall("the text has " + std::to_string(ids->size()) + " tokens but the buffer holds " +
                      std::to_string(capacity));
    }
    if (!ids->empty()) std::memcpy(tokens, ids->data(), ids->size() * sizeof(int32_t));
    return FromStatus(Status::Ok());
  });
}

plm_status plm_detokenize(const plm_model* model, const int32_t* tokens, size_t n_tokens, char* text, size_t capacity,
                          size_t* text_len) {
  return Guard([&]() -> plm_status {
    if (model == nullptr) return FromStatus(Null("model"));
    if (tokens == nullptr && n_tokens > 0) return FromStatus(Null("tokens"));
    if (text == nullptr && capacity > 0) return FromStatus(Null("text"));
    if (text_len == nullptr) return FromStatus(Null("text_len"));
    const std::string s = model->state->model->tokenizer().Decode(std::vector<int32_t>(tokens, tokens + n_tokens));
    *text_len = s.size();
    if (capacity < s.size() + 1) {
      return TooSmall("the text needs " + std::to_string(s.size() + 1) + " bytes with its NUL but the buffer holds " +
                      std::to_string(capacity));
    }
    std::memcpy(text, s.data(), s.size());
    text[s.size()] = '\0';
    return FromStatus(Status::Ok());
  });
}

}  // extern "C"
