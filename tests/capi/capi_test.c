/* End-to-end test of the C API, compiled as C99: what an app embedding pocketlm does.
 * usage: capi_test random MAKE_RANDOM_MODEL WORKDIR   a model made by tools/mkmodel (runs in any clone)
 *        capi_test random-adapters MAKE_RANDOM_MODEL MAKE_RANDOM_LORA WORKDIR
 *                                                     adapters on such a model, made by tools/mkmodel too
 *        capi_test golden GOLDEN_DIR                  the same adapter checks on llama-tiny and its golden
 *                                                     adapters (exit 77 when absent; GOLDEN_DIR defaults to
 *                                                     $PLM_GOLDEN_DIR)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pocketlm/pocketlm.h"

static int g_failures = 0;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                      \
    }                                                                    \
  } while (0)

/* A call that must succeed; prints the library's message when it does not. */
#define CHECK_OK(call)                                                                                  \
  do {                                                                                                  \
    plm_status st_ = (call);                                                                            \
    if (st_ != PLM_OK) {                                                                                \
      fprintf(stderr, "%s:%d: FAILED: %s -> %s: %s\n", __FILE__, __LINE__, #call, plm_status_name(st_), \
              plm_last_error());                                                                        \
      ++g_failures;                                                                                     \
    }                                                                                                   \
  } while (0)

/* A call that must fail with `code` and leave a message. */
#define CHECK_ERR(code, call)                                                                             \
  do {                                                                                                    \
    plm_status st_ = (call);                                                                              \
    if (st_ != (code) || plm_last_error()[0] == '\0') {                                                   \
      fprintf(stderr, "%s:%d: FAILED: %s -> %s (expected %s), message '%s'\n", __FILE__, __LINE__, #call, \
              plm_status_name(st_), plm_status_name(code), plm_last_error());                             \
      ++g_failures;                                                                                       \
    } else {                                                                                              \
      printf("ok: %s -> %s: %s\n", #call, plm_status_name(st_), plm_last_error());                        \
    }                                                                                                     \
  } while (0)

/* Collects streamed text; stops after `stop_after` pieces when that is > 0. */
typedef struct {
  char text[4096];
  size_t len;
  int pieces;
  int stop_after;
} sink;

static int on_piece(const char* utf8, size_t len, void* user_data) {
  sink* s = (sink*)user_data;
  if (utf8[len] != '\0') ++g_failures; /* pieces are NUL-terminated */
  if (s->len + len < sizeof(s->text)) {
    memcpy(s->text + s->len, utf8, len);
    s->len += len;
    s->text[s->len] = '\0';
  }
  ++s->pieces;
  return s->stop_after > 0 && s->pieces >= s->stop_after;
}

static plm_generate_params greedy(int32_t max_tokens) {
  plm_generate_params p = plm_generate_default_params();
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  return p;
}

/* Greedy text of `prompt` on a fresh sequence of `s`. */
static void generate_text(plm_session* s, const char* prompt, int32_t n, sink* out) {
  plm_generate_params p = greedy(n);
  memset(out, 0, sizeof(*out));
  CHECK_OK(plm_session_reset(s));
  CHECK_OK(plm_generate(s, prompt, strlen(prompt), &p, on_piece, out, NULL));
}

static int run_random(const char* make_model, const char* work) {
  char path[1024], cmd[2400], trunc_path[1100];
  /* In a cross build the model maker runs under the emulator (PLM_EMULATOR, e.g. "qemu-aarch64"). */
  const char* emulator = getenv("PLM_EMULATOR");
  snprintf(path, sizeof(path), "%s/random.gguf", work);
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && %s '%s' '%s' --seed 3", work, emulator ? emulator : "", make_model,
           path);
  if (system(cmd) != 0) {
    fprintf(stderr, "could not run %s\n", cmd);
    return 1;
  }

  CHECK(plm_api_version() == PLM_API_VERSION);
  CHECK(strlen(plm_version()) >= 5);
  CHECK(strcmp(plm_status_name(PLM_CORRUPT), "PLM_CORRUPT") == 0);
  CHECK(strcmp(plm_status_name(PLM_UNAVAILABLE), "PLM_UNAVAILABLE") == 0);
  CHECK(strcmp(plm_status_name((plm_status)99), "PLM_UNKNOWN_STATUS") == 0);

  /* Loading: bad path, truncated file, NULLs. */
  plm_model* model = (plm_model*)&g_failures; /* must be reset to NULL on failure */
  CHECK_ERR(PLM_IO, plm_model_load("/nonexistent/model.gguf", NULL, &model));
  CHECK(model == NULL);
  CHECK(strstr(plm_last_error(), "/nonexistent/model.gguf") != NULL);
  snprintf(trunc_path, sizeof(trunc_path), "%s/truncated.gguf", work);
  {
    FILE* in = fopen(path, "rb");
    FILE* out = fopen(trunc_path, "wb");
    char buf[1000];
    size_t n = in != NULL ? fread(buf, 1, sizeof(buf), in) : 0;
    if (out != NULL) fwrite(buf, 1, n, out);
    if (in != NULL) fclose(in);
    if (out != NULL) fclose(out);
  }
  CHECK_ERR(PLM_CORRUPT, plm_model_load(trunc_path, NULL, &model));
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_model_load(NULL, NULL, &model));
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_model_load(path, NULL, NULL));
  {
    plm_model_params bad = plm_model_default_params();
    bad.n_threads = -1;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_model_load(path, &bad, &model));
  }
  CHECK_OK(plm_model_load(path, NULL, &model));
  if (model == NULL) return 1;

  plm_model_info info;
  CHECK_OK(plm_model_get_info(model, &info));
  CHECK(strcmp(info.architecture, "llama") == 0);
  CHECK(info.n_vocab > 259 && info.n_ctx_train == 2048 && info.n_layer == 2 && info.bos == 1 && info.eos == 2);
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_model_get_info(NULL, &info));
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_model_get_info(model, NULL));

  /* Tokenize with size reporting, then decode back. */
  {
    const char* text = "the small model runs";
    size_t n = 0, len = 0;
    int32_t ids[64];
    char back[128];
    CHECK_ERR(PLM_BUFFER_TOO_SMALL, plm_tokenize(model, text, strlen(text), 0, 0, NULL, 0, &n));
    CHECK(n > 0 && n < 64);
    CHECK_OK(plm_tokenize(model, text, strlen(text), 0, 0, ids, 64, &n));
    CHECK_ERR(PLM_BUFFER_TOO_SMALL, plm_detokenize(model, ids, n, back, 3, &len));
    CHECK(len == strlen(text));
    CHECK_OK(plm_detokenize(model, ids, n, back, sizeof(back), &len));
    CHECK(len == strlen(text) && strcmp(back, text) == 0);
    CHECK_OK(plm_tokenize(model, text, strlen(text), 1, 0, ids, 64, &n));
    CHECK(ids[0] == info.bos);
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_tokenize(NULL, text, 4, 0, 0, ids, 64, &n));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_tokenize(model, NULL, 4, 0, 0, ids, 64, &n));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_tokenize(model, text, 4, 0, 0, ids, 64, NULL));
    CHECK_OK(plm_tokenize(model, NULL, 0, 0, 0, NULL, 0, &n));
    CHECK(n == 0);
  }

  /* Sessions and generation. */
  plm_session* s = NULL;
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_create(NULL, NULL, &s));
  CHECK_OK(plm_session_create(model, NULL, &s));
  if (s == NULL) return 1;
  {
    sink a, b;
    plm_generate_result r;
    plm_generate_params p = greedy(12);
    int32_t n_past = -1, n_ctx = -1, ids[64], had_pending = 0;
    size_t n_prompt = 0;
    generate_text(s, "the model", 12, &a);
    generate_text(s, "the model", 12, &b);
    CHECK(a.len > 0 && strcmp(a.text, b.text) == 0);
    printf("ok: greedy text is reproducible: '%s'\n", a.text);

    memset(&a, 0, sizeof(a));
    CHECK_OK(plm_session_reset(s));
    CHECK_OK(plm_tokenize(model, "the model", 9, 1, 1, ids, 64, &n_prompt));
    CHECK_OK(plm_generate(s, "the model", 9, &p, on_piece, &a, &r));
    CHECK(r.n_prompt_tokens == (int32_t)n_prompt && r.n_generated <= 12);
    CHECK(r.stop_reason == PLM_STOP_MAX_TOKENS || r.stop_reason == PLM_STOP_END_OF_GENERATION);
    /* The cache holds the prompt and every sampled token but the last (which the next call evaluates first). */
    CHECK_OK(plm_session_get_position(s, &n_past, &n_ctx));
    CHECK(n_ctx == 2048);
    CHECK(n_past == r.n_prompt_tokens + r.n_generated - (r.stop_reason == PLM_STOP_MAX_TOKENS));
    had_pending = r.stop_reason == PLM_STOP_MAX_TOKENS && r.n_generated > 0;
    CHECK_OK(plm_tokenize(model, " and", 4, 0, 1, ids, 64, &n_prompt));
    CHECK_OK(plm_generate(s, " and", 4, &p, on_piece, &a, &r));
    CHECK(r.n_prompt_tokens == (int32_t)n_prompt + had_pending); /* the pending token first */

    /* The callback stops generation. */
    memset(&a, 0, sizeof(a));
    a.stop_after = 1;
    CHECK_OK(plm_session_reset(s));
    CHECK_OK(plm_generate(s, "the model", 9, &p, on_piece, &a, &r));
    CHECK(a.pieces == 1 && r.stop_reason == PLM_STOP_CALLBACK);

    /* NULL callback and result are allowed. */
    CHECK_OK(plm_generate(s, "x", 1, &p, NULL, NULL, NULL));

    /* Bad sampling parameters, NULL session, prompt longer than the context. */
    p.top_p = 0.0f;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate(s, "x", 1, &p, NULL, NULL, NULL));
    p = greedy(4);
    p.max_tokens = -1;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate(s, "x", 1, &p, NULL, NULL, NULL));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate(NULL, "x", 1, NULL, NULL, NULL, NULL));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate(s, NULL, 1, NULL, NULL, NULL, NULL));
  }
  {
    plm_session_params sp = plm_session_default_params();
    plm_session* small = NULL;
    const char* long_prompt = "the small model runs on the small model and the small model";
    sp.n_ctx = 8;
    sp.n_threads = 1;
    CHECK_OK(plm_session_create(model, &sp, &small));
    CHECK_ERR(PLM_OUT_OF_RANGE, plm_generate(small, long_prompt, strlen(long_prompt), NULL, NULL, NULL, NULL));
    plm_session_free(small);
  }

  /* Chat: the random model has no template, so ChatML is used with its markers spelled as text (its vocabulary
   * lacks <|im_start|>); a named one works; bad roles and names are errors. */
  {
    plm_chat_message msgs[2];
    plm_generate_params p = greedy(6);
    plm_generate_result r;
    sink a;
    memset(&a, 0, sizeof(a));
    msgs[0].role = "system";
    msgs[0].content = "be small";
    msgs[1].role = "user";
    msgs[1].content = "run the model";
    CHECK_OK(plm_generate_chat(s, msgs, 2, NULL, &p, on_piece, &a, &r));
    CHECK(r.n_prompt_tokens > 20); /* "<|im_start|>system\n..." spelled with byte-level pieces */
    CHECK_OK(plm_generate_chat(s, msgs, 2, "llama2", &p, on_piece, &a, &r));
    CHECK(r.n_prompt_tokens > 5);
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate_chat(s, msgs, 2, "nonsense", &p, NULL, NULL, NULL));
    msgs[1].role = "robot";
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate_chat(s, msgs, 2, "llama2", &p, NULL, NULL, NULL));
    msgs[1].role = NULL;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_generate_chat(s, msgs, 2, "llama2", &p, NULL, NULL, NULL));
  }

  /* Adapters: a model file is not an adapter; NULLs. */
  {
    plm_adapter* ad = (plm_adapter*)&g_failures;
    CHECK_ERR(PLM_UNSUPPORTED, plm_adapter_load(model, path, &ad));
    CHECK(ad == NULL);
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_adapter_load(NULL, path, &ad));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_adapter_load(model, NULL, &ad));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_set_adapters(NULL, NULL, 0));
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_set_adapters(s, NULL, 1));
    CHECK_OK(plm_session_set_adapters(s, NULL, 0));
  }
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_reset(NULL));
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_eval(NULL, NULL, 0, NULL, 0));

  /* Handles may be freed in any order; NULL frees are no-ops. */
  plm_model_free(model);
  CHECK_OK(plm_generate(s, "the", 3, NULL, NULL, NULL, NULL));
  plm_session_free(s);
  plm_model_free(NULL);
  plm_adapter_free(NULL);
  plm_session_free(NULL);
  return 0;
}

/* Evaluates `prompt` from an empty sequence and writes the last logits to `logits`. */
static void eval_prompt(plm_session* s, const plm_model* m, const char* prompt, float* logits, size_t n_vocab) {
  int32_t ids[256];
  size_t n = 0;
  CHECK_OK(plm_tokenize(m, prompt, strlen(prompt), 1, 1, ids, 256, &n));
  CHECK_OK(plm_session_reset(s));
  CHECK_OK(plm_session_eval(s, ids, n, logits, n_vocab));
}

static int same_floats(const float* a, const float* b, size_t n) {
  return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Adapters on `base`: `lora` fits it, `other_arch` was made for another architecture, `other_shape` for another
 * llama shape. `canonical_replies`: the model's greedy replies re-tokenize to the tokens it generated, so a second
 * chat turn can reuse the cache (true of llama-tiny with its Llama-2 vocabulary; a random model over the 366-piece
 * demo vocabulary spells words piece by piece where the tokenizer takes the whole word, so the cached turn is never
 * a prefix of the re-rendered conversation). */
static int run_adapters(const char* base, const char* lora, const char* other_arch, const char* other_shape,
                        int canonical_replies) {
  plm_model *model = NULL, *model2 = NULL;
  plm_adapter *ad = NULL, *ad2 = NULL, *bad = NULL;
  plm_session *s = NULL, *fresh = NULL;
  plm_model_info info;
  CHECK_OK(plm_model_load(base, NULL, &model));
  if (model == NULL) return 1;
  CHECK_OK(plm_model_get_info(model, &info));
  CHECK_OK(plm_adapter_load(model, lora, &ad));

  /* Mismatched adapters are refused with a message that says why. */
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_adapter_load(model, other_arch, &bad));
  CHECK(bad == NULL && strstr(plm_last_error(), "architecture") != NULL);
  CHECK_ERR(PLM_INVALID_ARGUMENT, plm_adapter_load(model, other_shape, &bad));
  CHECK(strstr(plm_last_error(), "shape") != NULL);

  /* An adapter loaded for another model handle (even of the same file) is refused by a session. */
  CHECK_OK(plm_model_load(base, NULL, &model2));
  CHECK_OK(plm_adapter_load(model2, lora, &ad2));
  CHECK_OK(plm_session_create(model, NULL, &s));
  CHECK_OK(plm_session_create(model, NULL, &fresh));
  if (s == NULL || fresh == NULL || ad == NULL || ad2 == NULL) return 1;
  {
    plm_adapter_scale foreign = {NULL, 1.0f};
    foreign.adapter = ad2;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_set_adapters(s, &foreign, 1));
    foreign.adapter = NULL;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_set_adapters(s, &foreign, 1));
    foreign.adapter = ad;
    foreign.scale = (float)NAN;
    CHECK_ERR(PLM_INVALID_ARGUMENT, plm_session_set_adapters(s, &foreign, 1));
  }

  const size_t n_vocab = (size_t)info.n_vocab;
  float* base_logits = (float*)malloc(n_vocab * sizeof(float));
  float* switched = (float*)malloc(n_vocab * sizeof(float));
  float* reference = (float*)malloc(n_vocab * sizeof(float));
  if (base_logits == NULL || switched == NULL || reference == NULL) return 1;
  const char* prompt = "Once upon a time, there was a little";
  plm_adapter_scale full = {NULL, 1.0f}, half = {NULL, 0.5f};
  full.adapter = ad;
  half.adapter = ad;

  CHECK_ERR(PLM_BUFFER_TOO_SMALL, plm_session_eval(s, NULL, 0, base_logits, n_vocab - 1));

  /* Base, then adapter at 1.0, then 0.5, then back to base, all on one session; each equals a fresh session. */
  eval_prompt(s, model, prompt, base_logits, n_vocab);
  {
    sink a, b;
    int32_t n_past = 0;
    generate_text(s, prompt, 16, &a);
    CHECK_OK(plm_session_set_adapters(s, &full, 1));
    CHECK_OK(plm_session_get_position(s, &n_past, NULL));
    CHECK(n_past == 0); /* a new set empties the cache */
    generate_text(s, prompt, 16, &b);
    CHECK(strcmp(a.text, b.text) != 0);
    printf("ok: base '%s' vs adapter '%s'\n", a.text, b.text);

    CHECK_OK(plm_session_set_adapters(fresh, &full, 1));
    generate_text(fresh, prompt, 16, &a);
    CHECK(strcmp(a.text, b.text) == 0);
  }
  eval_prompt(s, model, prompt, switched, n_vocab);
  eval_prompt(fresh, model, prompt, reference, n_vocab);
  CHECK(same_floats(switched, reference, n_vocab));
  CHECK(!same_floats(switched, base_logits, n_vocab));

  /* Setting the active set again keeps the cache. */
  {
    int32_t before = 0, after = 0;
    CHECK_OK(plm_session_get_position(s, &before, NULL));
    CHECK_OK(plm_session_set_adapters(s, &full, 1));
    CHECK_OK(plm_session_get_position(s, &after, NULL));
    CHECK(before > 0 && after == before);
  }

  /* Mid-conversation switch (chat): turn 1 under the adapter, turn 2 at scale 0.5 equals a fresh session. */
  {
    plm_chat_message msgs[3];
    plm_generate_params p = greedy(12);
    plm_generate_result r;
    sink t1, t2, ref;
    memset(&t1, 0, sizeof(t1));
    memset(&t2, 0, sizeof(t2));
    memset(&ref, 0, sizeof(ref));
    msgs[0].role = "user";
    msgs[0].content = "Tell me a story.";
    CHECK_OK(plm_session_reset(s));
    CHECK_OK(plm_generate_chat(s, msgs, 1, "llama2", &p, on_piece, &t1, &r));
    msgs[1].role = "assistant";
    msgs[1].content = t1.text;
    msgs[2].role = "user";
    msgs[2].content = "And then?";
    /* Same set: the cache holds turn 1, so only the rest of the conversation is evaluated. */
    {
      plm_generate_result r2;
      int32_t held = 0;
      CHECK_OK(plm_session_get_position(s, &held, NULL));
      CHECK_OK(plm_generate_chat(s, msgs, 3, "llama2", &p, NULL, NULL, &r2));
      printf("turn 2 reused %d cached tokens and evaluated %d\n", (int)held, (int)r2.n_prompt_tokens);
      CHECK(held > 0 && (r2.n_prompt_tokens < held || !canonical_replies));
    }
    CHECK_OK(plm_session_set_adapters(s, &half, 1));
    CHECK_OK(plm_generate_chat(s, msgs, 3, "llama2", &p, on_piece, &t2, &r));
    CHECK_OK(plm_session_set_adapters(fresh, &half, 1));
    CHECK_OK(plm_generate_chat(fresh, msgs, 3, "llama2", &p, on_piece, &ref, NULL));
    CHECK(strcmp(t2.text, ref.text) == 0);
    printf("ok: chat turn 2 after a switch equals a fresh session: '%s'\n", t2.text);
  }

  /* Back to the bare base: exactly the base logits. */
  CHECK_OK(plm_session_set_adapters(s, NULL, 0));
  eval_prompt(s, model, prompt, switched, n_vocab);
  CHECK(same_floats(switched, base_logits, n_vocab));

  /* The session keeps its adapter mapped after the caller frees the handle. */
  CHECK_OK(plm_session_set_adapters(s, &full, 1));
  plm_adapter_free(ad);
  plm_model_free(model);
  {
    int32_t ids[256];
    size_t n = 0;
    CHECK_OK(plm_tokenize(model2, prompt, strlen(prompt), 1, 1, ids, 256, &n));
    CHECK_OK(plm_session_reset(s));
    CHECK_OK(plm_session_eval(s, ids, n, switched, n_vocab));
    CHECK(same_floats(switched, reference, n_vocab));
  }

  free(base_logits);
  free(switched);
  free(reference);
  plm_session_free(s);
  plm_session_free(fresh);
  plm_adapter_free(ad2);
  plm_model_free(model2);
  return 0;
}

/* llama-tiny and its adapters from the golden set (exit 77 when absent). */
static int run_golden(const char* dir) {
  char base[1024], lora[1024], other_arch[1024], other_shape[1024];
  FILE* probe = NULL;
  snprintf(base, sizeof(base), "%s/models/llama-tiny.gguf", dir);
  snprintf(lora, sizeof(lora), "%s/models/llama-tiny.lora-r8.gguf", dir);
  snprintf(other_arch, sizeof(other_arch), "%s/models/qwen2-tiny.lora-r4.gguf", dir);
  snprintf(other_shape, sizeof(other_shape), "%s/models/llama-kq.lora-r16.gguf", dir);
  probe = fopen(base, "rb");
  if (probe == NULL) {
    printf("SKIPPED: %s not found\n", base);
    return 77;
  }
  fclose(probe);
  return run_adapters(base, lora, other_arch, other_shape, 1);
}

/* A random base (llama-tiny's shape) and random adapters made by tools/mkmodel: runs in any clone. */
static int run_random_adapters(const char* make_model, const char* make_lora, const char* work) {
  char base[1024], lora[1024], other_arch[1024], other_base[1024], other_shape[1024], cmd[16384];
  /* In a cross build the makers run under the emulator (PLM_EMULATOR, e.g. "qemu-aarch64"). */
  const char* emu = getenv("PLM_EMULATOR") != NULL ? getenv("PLM_EMULATOR") : "";
  snprintf(base, sizeof(base), "%s/base.gguf", work);
  snprintf(lora, sizeof(lora), "%s/base.lora-r8.gguf", work);
  snprintf(other_arch, sizeof(other_arch), "%s/qwen2.lora.gguf", work);
  snprintf(other_base, sizeof(other_base), "%s/other-shape.gguf", work);
  snprintf(other_shape, sizeof(other_shape), "%s/other-shape.lora.gguf", work);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s' && %s '%s' '%s' --seed 3 >/dev/null && %s '%s' '%s' '%s' --rank 8 --alpha 16 >/dev/null && "
           "%s '%s' '%s' '%s' --arch qwen2 >/dev/null && %s '%s' '%s' --embd 128 >/dev/null && "
           "%s '%s' '%s' '%s' >/dev/null",
           work, emu, make_model, base, emu, make_lora, base, lora, emu, make_lora, base, other_arch, emu, make_model,
           other_base, emu, make_lora, other_base, other_shape);
  if (system(cmd) != 0) {
    fprintf(stderr, "could not run %s\n", cmd);
    return 1;
  }
  return run_adapters(base, lora, other_arch, other_shape, 0);
}

int main(int argc, char** argv) {
  int rc = 2;
  if (argc >= 4 && strcmp(argv[1], "random") == 0) {
    rc = run_random(argv[2], argv[3]);
  } else if (argc >= 5 && strcmp(argv[1], "random-adapters") == 0) {
    rc = run_random_adapters(argv[2], argv[3], argv[4]);
  } else if (argc >= 2 && strcmp(argv[1], "golden") == 0) {
    const char* dir = argc >= 3 ? argv[2] : getenv("PLM_GOLDEN_DIR");
    if (dir == NULL) {
      printf("SKIPPED: no golden directory (argument or PLM_GOLDEN_DIR)\n");
      return 77;
    }
    rc = run_golden(dir);
  } else {
    fprintf(stderr,
            "usage: %s random MAKE_RANDOM_MODEL WORKDIR | random-adapters MAKE_RANDOM_MODEL MAKE_RANDOM_LORA "
            "WORKDIR | golden [GOLDEN_DIR]\n",
            argv[0]);
    return 2;
  }
  if (rc != 0) return rc;
  printf("capi: %d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
