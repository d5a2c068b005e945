// What the C API's opaque handles hold, and the boundary guard every entry point runs its body in.
// Ownership: models, adapters and sessions share one ModelState by shared_ptr, and sessions share the adapters
// they have active, so C callers may free handles in any order (pocketlm.h "Lifetimes").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "base/status.h"
#include "lora/adapter.h"
#include "model/context.h"
#include "model/model.h"
#include "pocketlm/pocketlm.h"
#include "tokenizer/chat_format.h"

namespace pocketlm::capi {

struct ModelState {
  std::unique_ptr<Model> model;
  plm_model_params defaults{};
  std::string name;        // general.name, "" when absent
  ChatFormat chat_format;  // the model's own chat template, or ChatML (model/chat_format_choice.h)
};

// Thread-local last error (pocketlm.h plm_last_error).
void SetLastError(const char* message) noexcept;
plm_status Fail(plm_status code, const char* message) noexcept;
plm_status FromStatus(const Status& s) noexcept;  // also clears or sets the last error

// PLM_BUFFER_TOO_SMALL, which has no ErrorCode: the body of an entry point that can report it returns plm_status.
plm_status TooSmall(const std::string& message) noexcept;

// Runs `body` (returning Status or plm_status) so that nothing escapes: std::bad_alloc -> PLM_OUT_OF_MEMORY, any
// other exception -> PLM_INTERNAL with its what().
template <typename F>
plm_status Guard(F&& body) noexcept {
  try {
    if constexpr (std::is_same_v<decltype(body()), plm_status>) {
      return body();
    } else {
      return FromStatus(body());
    }
  } catch (const std::bad_alloc&) {
    return Fail(PLM_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Fail(PLM_INTERNAL, e.what());
  } catch (...) {
    return Fail(PLM_INTERNAL, "unknown exception");
  }
}

// A NULL-argument error naming the parameter, for `if (p == nullptr) return Null("model");`.
inline Status Null(const char* what) {
  return InvalidArgument(std::string(what) + " is NULL");
}

// Returns the C status of `expr` (a Status) from a plm_status-returning body when it is not OK.
#define PLM_RETURN_IF_ERROR_C(...)                                               \
  do {                                                                           \
    ::pocketlm::Status plm_c_status_ = (__VA_ARGS__);                            \
    if (!plm_c_status_.ok()) return ::pocketlm::capi::FromStatus(plm_c_status_); \
  } while (0)

}  // namespace pocketlm::capi

struct plm_model {
  std::shared_ptr<pocketlm::capi::ModelState> state;
};

struct plm_adapter {
  std::shared_ptr<pocketlm::capi::ModelState> model;  // the base it was checked against
  std::shared_ptr<const pocketlm::LoraAdapter> adapter;
};

struct plm_session {
  std::shared_ptr<pocketlm::capi::ModelState> model;
  std::unique_ptr<pocketlm::Context> ctx;
  // The active set as given (for the no-op check) and the references that keep those adapters mapped.
  std::vector<pocketlm::ActiveLora> active;
  std::vector<std::shared_ptr<const pocketlm::LoraAdapter>> keep;
  std::vector<int32_t> history;  // the tokens in ctx's cache: history.size() == ctx->n_past()
  int32_t pending = -1;          // last sampled token, not yet evaluated; -1 when none
  std::vector<float> logits;     // scratch, (n_vocab)
};

namespace pocketlm::capi {

// Evaluates the pending token (if any) and `tokens` after the session's sequence; the last token's logits go to
// *logits. The session's history follows the cache.
Status EvalAppend(plm_session* s, std::vector<int32_t> tokens, std::vector<float>* logits);
// Empties the sequence (cache positions and history); the adapters stay.
void ResetSequence(plm_session* s);
// Starts the sequence over when the history and the cache disagree, which only an exception thrown in the middle
// of an earlier call can cause; every entry point that extends the sequence calls it first.
void RepairSequence(plm_session* s);

}  // namespace pocketlm::capi
