/* pocketlm C API: load a GGUF model once, switch LoRA adapters per session in microseconds, tokenize and
 * generate with streamed text. Valid C99 (and C++); link libpocketlm.so (target pocketlm_c) or the static
 * plm_capi library.
 *
 * Conventions
 *   - Every function that can fail returns a plm_status. PLM_OK is 0. On failure plm_last_error() gives a
 *     one-line message for the calling thread. No C++ exception ever crosses this interface.
 *   - Handles are opaque. A NULL handle or a NULL required pointer is PLM_INVALID_ARGUMENT, never a crash.
 *   - Strings passed in are UTF-8 and borrowed only for the duration of the call unless said otherwise.
 *     Strings returned are owned by the library; each function says how long they stay valid.
 *   - Threads: models and adapters are immutable after loading and may be used from any number of threads at
 *     once. A session must be used by one thread at a time (make one session per concurrent generation).
 *   - Lifetimes: sessions and adapters keep their model alive, and sessions keep their active adapters alive, so
 *     handles may be freed in any order; memory is released when the last user is gone.
 */
#ifndef POCKETLM_POCKETLM_H_
#define POCKETLM_POCKETLM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions; libpocketlm.so hides every other symbol. */
#if defined(__GNUC__)
#define PLM_API __attribute__((visibility("default")))
#else
#define PLM_API
#endif

/* ---- version ---- */

#define PLM_VERSION_MAJOR 0
#define PLM_VERSION_MINOR 1
#define PLM_VERSION_PATCH 0
/* Bumped whenever a struct or signature of this header changes incompatibly. */
#define PLM_API_VERSION 1

/* "MAJOR.MINOR.PATCH" of the library actually linked. Static string, never freed. */
PLM_API const char* plm_version(void);
/* PLM_API_VERSION of the library actually linked; compare with the header's to detect a mismatch. */
PLM_API uint32_t plm_api_version(void);

/* ---- errors ---- */

typedef enum plm_status {
  PLM_OK = 0,
  PLM_INVALID_ARGUMENT = 1, /* unusable argument: NULL handle, bad option, adapter made for another model */
  PLM_NOT_FOUND = 2,        /* a file, tensor or key that should exist does not */
  PLM_CORRUPT = 3,          /* a file contradicts its own header or the GGUF format */
  PLM_UNSUPPORTED = 4,      /* well-formed, but not implemented (architecture, tensor type, chat template) */
  PLM_IO = 5,               /* the operating system refused (open, read, mmap) */
  PLM_OUT_OF_RANGE = 6,     /* a size or position beyond a limit (context full, prompt too long) */
  PLM_OUT_OF_MEMORY = 7,    /* an allocation failed */
  PLM_BUFFER_TOO_SMALL = 8, /* a caller buffer is too small; the required size was reported */
  PLM_INTERNAL = 9,         /* a bug in pocketlm: please report the message */
  PLM_UNAVAILABLE = 10      /* refused for now (cancelled, shutting down), not for what was asked */
} plm_status;

/* Constant name of a status ("PLM_OK", "PLM_NOT_FOUND", ...; "PLM_UNKNOWN_STATUS" otherwise). Never freed. */
PLM_API const char* plm_status_name(plm_status status);

/* Message of the most recent failed call made by this thread ("" after a call that returned PLM_OK). Owned by
 * the library, thread-local; valid until this thread's next call into the API. */
PLM_API const char* plm_last_error(void);

/* ---- models ---- */

typedef struct plm_model plm_model;

typedef struct plm_model_params {
  int32_t n_threads; /* default threads of sessions made from this model, including the caller's; 0 = 2 */
  int32_t n_ctx;     /* default context length of sessions; 0 = min(training context, 4096) */
} plm_model_params;

/* Defaults: n_threads 0, n_ctx 0. */
PLM_API plm_model_params plm_model_default_params(void);

/* Maps the GGUF file at `path` (NUL-terminated) and writes a new handle to *out_model (set to NULL on failure).
 * `params` may be NULL for the defaults. Free with plm_model_free. */
PLM_API plm_status plm_model_load(const char* path, const plm_model_params* params, plm_model** out_model);

/* Releases the caller's handle. NULL is a no-op. Sessions and adapters made from the model stay usable; the
 * mapping is released when the last of them is freed too. */
PLM_API void plm_model_free(plm_model* model);

typedef struct plm_model_info {
  const char* architecture; /* general.architecture, e.g. "llama"; valid while the model lives */
  const char* name;         /* general.name, or "" when absent; valid while the model lives */
  int32_t n_vocab;
  int32_t n_ctx_train; /* context length the model was trained with */
  int32_t n_embd;
  int32_t n_layer;
  int32_t bos; /* token ids; -1 when the vocabulary has none */
  int32_t eos;
  int32_t eot;
} plm_model_info;

PLM_API plm_status plm_model_get_info(const plm_model* model, plm_model_info* out_info);

/* ---- adapters ---- */

typedef struct plm_adapter plm_adapter;

/* Loads (mmaps) the LoRA adapter GGUF at `path` and checks it against `model`: architecture, every target tensor
 * name and shape. A mismatch is PLM_INVALID_ARGUMENT with a message naming the tensor. Writes a new handle to
 * *out_adapter (NULL on failure). The adapter keeps `model` alive. Free with plm_adapter_free. */
PLM_API plm_status plm_adapter_load(plm_model* model, const char* path, plm_adapter** out_adapter);

/* Releases the caller's handle. NULL is a no-op. Sessions that have the adapter active keep using it until
 * their adapters change or they are freed; then its mapping is released. */
PLM_API void plm_adapter_free(plm_adapter* adapter);

/* ---- tokens ---- */

/* Encodes `text_len` bytes of `text` (need not be NUL-terminated). add_special != 0: BOS/EOS as the vocabulary
 * says; parse_special != 0: control-token texts such as "</s>" become those tokens. Writes up to `capacity`
 * ids to `tokens` (may be NULL when capacity is 0) and the count needed to *n_tokens. Returns
 * PLM_BUFFER_TOO_SMALL (nothing useful written) when capacity < *n_tokens: call again with a larger buffer. */
PLM_API plm_status plm_tokenize(const plm_model* model, const char* text, size_t text_len, int32_t add_special,
                                int32_t parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens);

/* Decodes `n_tokens` ids to UTF-8 (control tokens render as ""). Writes the text and a terminating NUL to
 * `text` when capacity >= *text_len + 1, where *text_len is the text's length without the NUL; otherwise
 * PLM_BUFFER_TOO_SMALL. `text` may be NULL when capacity is 0. */
PLM_API plm_status plm_detokenize(const plm_model* model, const int32_t* tokens, size_t n_tokens, char* text,
                                  size_t capacity, size_t* text_len);

/* ---- sessions ---- */

/* A KV cache, scratch memory, a thread pool and the active adapter set over one model. A session holds one
 * sequence: generate calls continue after what it already holds until plm_session_reset. */
typedef struct plm_session plm_session;

typedef struct plm_session_params {
  int32_t n_threads; /* 0 = the model's default */
  int32_t n_ctx;     /* positions held by the cache; 0 = the model's default */
} plm_session_params;

PLM_API plm_session_params plm_session_default_params(void);

/* Creates a session over `model` (kept alive by it); `params` may be NULL. Writes the handle to *out_session
 * (NULL on failure). Free with plm_session_free. */
PLM_API plm_status plm_session_create(plm_model* model, const plm_session_params* params, plm_session** out_session);

/* Frees the session and releases its model and adapter references. NULL is a no-op. */
PLM_API void plm_session_free(plm_session* session);

/* Forgets the session's sequence (the cache is reused, not freed). Active adapters stay. */
PLM_API plm_status plm_session_reset(plm_session* session);

/* Tokens in the session's cache and its capacity; either pointer may be NULL. The last token a generate call
 * sampled is evaluated by the next call (it is not in the cache yet). */
PLM_API plm_status plm_session_get_position(const plm_session* session, int32_t* n_past, int32_t* n_ctx);

typedef struct plm_adapter_scale {
  const plm_adapter* adapter; /* made from the session's model */
  float scale;                /* user scale; the effective factor is scale * alpha / rank, as llama.cpp */
} plm_adapter_scale;

/* Makes exactly `n_adapters` adapters active (0 = the bare base), each adding scale * B (A x) to the projections
 * it targets. Costs tens of microseconds: no base weight is read or copied. `adapters` is copied; the session
 * keeps the adapters alive while they are active. The cache was computed under the previous set, so a different
 * set empties it: plm_generate_chat then re-evaluates the whole conversation by itself, while plm_generate and
 * plm_session_eval start a new sequence (pass the whole text again). Setting the set already active is a no-op
 * that keeps the cache. On error the previous set stays active. */
PLM_API plm_status plm_session_set_adapters(plm_session* session, const plm_adapter_scale* adapters, size_t n_adapters);

/* Evaluates `n_tokens` ids after the session's sequence and, when `logits` is not NULL, writes the last
 * token's n_vocab logits there (`capacity` floats; fewer than n_vocab is PLM_BUFFER_TOO_SMALL, checked before
 * any work). */
PLM_API plm_status plm_session_eval(plm_session* session, const int32_t* tokens, size_t n_tokens, float* logits,
                                    size_t capacity);

/* ---- generation ---- */

typedef struct plm_generate_params {
  float temperature;     /* <= 0: greedy (argmax) */
  int32_t top_k;         /* <= 0: off */
  float top_p;           /* >= 1: off; must be > 0 */
  float min_p;           /* <= 0: off */
  float repeat_penalty;  /* 1: off */
  int32_t repeat_last_n; /* recent tokens the penalty looks at */
  uint64_t seed;         /* same seed, same text on every platform */
  int32_t max_tokens;    /* new tokens at most; >= 0 */
  int32_t stop_at_eog;   /* != 0: stop at an end-of-generation token (EOS, EOT); it is not emitted */
} plm_generate_params;

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, repeat_last_n 64,
 * seed 0, max_tokens 128, stop_at_eog 1. */
PLM_API plm_generate_params plm_generate_default_params(void);

/* Receives each complete UTF-8 piece of generated text: `utf8` points to `len` bytes followed by a NUL, valid
 * only during the call. Return 0 to continue, non-zero to stop generating. */
typedef int (*plm_piece_callback)(const char* utf8, size_t len, void* user_data);

typedef enum plm_stop_reason {
  PLM_STOP_END_OF_GENERATION = 0, /* the model produced EOS / EOT */
  PLM_STOP_MAX_TOKENS = 1,
  PLM_STOP_CALLBACK = 2,    /* on_piece returned non-zero */
  PLM_STOP_CONTEXT_FULL = 3 /* the session's n_ctx positions are used up */
} plm_stop_reason;

typedef struct plm_generate_result {
  int32_t n_prompt_tokens; /* prompt tokens evaluated by this call (cached ones it reused not counted) */
  int32_t n_generated;     /* tokens sampled (EOS/EOT that stopped generation not counted) */
  int32_t stop_reason;     /* a plm_stop_reason */
  double prefill_seconds;
  double decode_seconds;
} plm_generate_result;

/* Continues the session with `prompt_len` bytes of `prompt` (special-token texts are parsed; BOS is added as the
 * vocabulary says when the session is empty), then samples up to params->max_tokens tokens, streaming text to
 * `on_piece` (may be NULL). `params` NULL = defaults; `result` may be NULL. */
PLM_API plm_status plm_generate(plm_session* session, const char* prompt, size_t prompt_len,
                                const plm_generate_params* params, plm_piece_callback on_piece, void* user_data,
                                plm_generate_result* result);

typedef struct plm_chat_message {
  const char* role;    /* "system", "user" or "assistant"; NUL-terminated */
  const char* content; /* NUL-terminated UTF-8; never parsed for special tokens */
} plm_chat_message;

/* Renders `messages` with a chat template and an assistant-turn prompt, then generates the reply as
 * plm_generate does. `chat_template`: "chatml", "llama3", "llama2", "gemma", "phi3", or NULL for the one the
 * model's tokenizer.chat_template names, ChatML when it has none pocketlm knows (as llama.cpp does). Template
 * markers the vocabulary has no special token for are tokenized as plain text.
 * The conversation is given whole each time; when the session already holds a prefix of it (the previous
 * turns), only the rest is evaluated, otherwise the session starts over. */
PLM_API plm_status plm_generate_chat(plm_session* session, const plm_chat_message* messages, size_t n_messages,
                                     const char* chat_template, const plm_generate_params* params,
                                     plm_piece_callback on_piece, void* user_data, plm_generate_result* result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POCKETLM_POCKETLM_H_ */
