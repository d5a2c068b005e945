// C API: text and chat generation over a session, streamed through a (callback, user_data) pair.
#include "model/generate.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "capi/capi_internal.h"
#include "model/chat_format_choice.h"

namespace pocketlm::capi {
namespace {

Result<GenerateParams> ToGenerateParams(const plm_generate_params& p) {
  if (p.max_tokens < 0) return InvalidArgument("max_tokens must be >= 0");
  GenerateParams gp;
  gp.n_predict = p.max_tokens;
  gp.stop_at_end_of_generation = p.stop_at_eog != 0;
  gp.sampling.temperature = p.temperature;
  gp.sampling.top_k = p.top_k;
  gp.sampling.top_p = p.top_p;
  gp.sampling.min_p = p.min_p;
  gp.sampling.repeat_penalty = p.repeat_penalty;
  gp.sampling.repeat_last_n = p.repeat_last_n;
  gp.sampling.seed = p.seed;
  PLM_RETURN_IF_ERROR(gp.sampling.Validate());
  return gp;
}

// Evaluates the pending token and `tokens` after the session's sequence, then samples. Afterwards the session's
// history is again exactly what the cache holds, and the last sampled token (which Generate does not evaluate)
// becomes pending, so the next call continues the same sequence.
// `end_of_turn`: text that ends the reply (a chat template's end-of-turn marker the vocabulary spells as text),
// held back and not passed on; "" for none.
Status Run(plm_session* s, std::vector<int32_t> tokens, const plm_generate_params* params, plm_piece_callback on_piece,
           void* user_data, plm_generate_result* result, const std::string& end_of_turn = "") {
  const plm_generate_params p = params != nullptr ? *params : plm_generate_default_params();
  PLM_ASSIGN_OR_RETURN(GenerateParams gp, ToGenerateParams(p));
  if (!end_of_turn.empty()) gp.stop.push_back(end_of_turn);
  RepairSequence(s);
  const int32_t old_pending = s->pending;
  if (old_pending >= 0) tokens.insert(tokens.begin(), old_pending);
  const size_t n_prompt = tokens.size();

  std::string piece_buf;  // a NUL-terminated copy for the C callback
  auto on_text = [&](std::string_view text) {
    if (on_piece == nullptr) return true;
    piece_buf.assign(text);
    return on_piece(piece_buf.c_str(), piece_buf.size(), user_data) == 0;
  };
  std::vector<int32_t> generated;
  const int before = s->ctx->n_past();
  Result<GenerateStats> stats = Generate(*s->ctx, tokens, gp, on_text, &generated);

  const auto n_new = static_cast<size_t>(s->ctx->n_past() - before);
  tokens.insert(tokens.end(), generated.begin(), generated.end());
  s->history.insert(s->history.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n_new));
  if (n_new == 0) {
    s->pending = old_pending;  // failed before evaluating anything
  } else {
    s->pending = n_new >= n_prompt && n_new < tokens.size() ? tokens[n_new] : -1;
  }
  if (!stats.ok()) return stats.status();

  if (result != nullptr) {
    result->n_prompt_tokens = static_cast<int32_t>(n_prompt);
    result->n_generated = stats->n_generated;
    switch (stats->reason) {
      case StopReason::kNone: result->stop_reason = PLM_STOP_CALLBACK; break;
      case StopReason::kMaxTokens: result->stop_reason = PLM_STOP_MAX_TOKENS; break;
      case StopReason::kContextFull: result->stop_reason = PLM_STOP_CONTEXT_FULL; break;
      case StopReason::kEndOfGeneration:
      case StopReason::kStopString:  // the chat template's end of turn, spelled as text
        result->stop_reason = PLM_STOP_END_OF_GENERATION;
        break;
    }
    result->prefill_seconds = stats->prefill_seconds;
    result->decode_seconds = stats->decode_seconds;
  }
  return Status::Ok();
}

// The conversation's tokens; *end_of_turn gets the text that ends the reply when the template's markers are
// spelled as text.
Result<std::vector<int32_t>> RenderAndTokenize(const plm_session& s, const plm_chat_message* messages,
                                               size_t n_messages, const char* chat_template, std::string* end_of_turn) {
  ChatFormat format = s.model->chat_format;
  if (chat_template != nullptr) {
    PLM_ASSIGN_OR_RETURN(format, ChooseChatFormat(*s.model->model, chat_template, MissingMarkers::kAsText));
  }
  std::vector<ChatMessage> msgs(n_messages);
  for (size_t i = 0; i < n_messages; ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (messages[i].role == nullptr) return InvalidArgument(where + ".role is NULL");
    if (messages[i].content == nullptr) return InvalidArgument(where + ".content is NULL");
    auto role = ChatRoleFromName(messages[i].role);
    if (!role.ok()) return role.status().WithContext(where);
    msgs[i].role = role.value();
    msgs[i].content = messages[i].content;
  }
  PLM_ASSIGN_OR_RETURN(TokenizedChat tc, RenderAndTokenizeChat(s.model->model->tokenizer(), format, msgs,
                                                               /*add_generation_prompt=*/true));
  *end_of_turn = format.end_of_turn_text;
  return std::move(tc.tokens);
}

}  // namespace
}  // namespace pocketlm::capi

using pocketlm::Status;
using pocketlm::capi::Guard;
using pocketlm::capi::Null;

extern "C" {

plm_generate_params plm_generate_default_params(void) {
  const pocketlm::SamplingParams d;
  plm_generate_params p;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.seed = d.seed;
  p.max_tokens = pocketlm::GenerateParams{}.n_predict;
  p.stop_at_eog = 1;
  return p;
}

plm_status plm_generate(plm_session* session, const char* prompt, size_t prompt_len, const plm_generate_params* params,
                        plm_piece_callback on_piece, void* user_data, plm_generate_result* result) {
  return Guard([&]() -> Status {
    if (session == nullptr) return Null("session");
    if (prompt == nullptr && prompt_len > 0) return Null("prompt");
    pocketlm::capi::RepairSequence(session);
    const bool at_start = session->history.empty() && session->pending < 0;
    const std::string_view text = prompt_len > 0 ? std::string_view(prompt, prompt_len) : std::string_view();
    PLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens,
                         session->model->model->tokenizer().Encode(text, at_start, /*parse_special=*/true));
    return pocketlm::capi::Run(session, std::move(tokens), params, on_piece, user_data, result);
  });
}

plm_status plm_generate_chat(plm_session* session, const plm_chat_message* messages, size_t n_messages,
                             const char* chat_template, const plm_generate_params* params, plm_piece_callback on_piece,
                             void* user_data, plm_generate_result* result) {
  return Guard([&]() -> Status {
    if (session == nullptr) return Null("session");
    if (messages == nullptr && n_messages > 0) return Null("messages");
    std::string end_of_turn;
    PLM_ASSIGN_OR_RETURN(std::vector<int32_t> full, pocketlm::capi::RenderAndTokenize(*session, messages, n_messages,
                                                                                      chat_template, &end_of_turn));
    // Reuse the cache when it holds a strict prefix of the conversation (the previous turns, usually).
    pocketlm::capi::RepairSequence(session);
    std::vector<int32_t> seq = session->history;
    if (session->pending >= 0) seq.push_back(session->pending);
    if (seq.size() < full.size() && std::equal(seq.begin(), seq.end(), full.begin())) {
      session->pending = -1;  // it is full[history.size()], evaluated below
      full.erase(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(session->history.size()));
    } else {
      pocketlm::capi::ResetSequence(session);
    }
    return pocketlm::capi::Run(session, std::move(full), params, on_piece, user_data, result, end_of_turn);
  });
}

}  // extern "C"
