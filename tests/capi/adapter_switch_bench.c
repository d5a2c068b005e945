/* Adapter switch time through the C API (issue 5, "adapter switch time, median and p99"): alternates a session
 * between adapter sets (A, B, A+B at 0.5 each, none) and times each plm_session_set_adapters call.
 * usage: adapter_switch_bench BASE.gguf ADAPTER_A.gguf ADAPTER_B.gguf [SWITCHES]   (run by bench/adapter_switch.sh)
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pocketlm/pocketlm.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static int fail(const char* what) {
  fprintf(stderr, "error: %s: %s\n", what, plm_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s BASE.gguf ADAPTER_A.gguf ADAPTER_B.gguf [SWITCHES]\n", argv[0]);
    return 2;
  }
  const int n = argc > 4 ? atoi(argv[4]) : 10000;
  if (n < 100) return fail("SWITCHES must be >= 100");
  plm_model* model = NULL;
  plm_adapter *a = NULL, *b = NULL;
  plm_session* s = NULL;
  if (plm_model_load(argv[1], NULL, &model) != PLM_OK) return fail(argv[1]);
  if (plm_adapter_load(model, argv[2], &a) != PLM_OK) return fail(argv[2]);
  if (plm_adapter_load(model, argv[3], &b) != PLM_OK) return fail(argv[3]);
  if (plm_session_create(model, NULL, &s) != PLM_OK) return fail("session");

  plm_adapter_scale sets[3][2];
  size_t counts[4] = {1, 1, 2, 0};
  sets[0][0].adapter = a;
  sets[0][0].scale = 1.0f;
  sets[1][0].adapter = b;
  sets[1][0].scale = 1.0f;
  sets[2][0].adapter = a;
  sets[2][0].scale = 0.5f;
  sets[2][1].adapter = b;
  sets[2][1].scale = 0.5f;

  double* us = (double*)malloc((size_t)n * sizeof(double));
  if (us == NULL) return 1;
  for (int i = 0; i < n; ++i) {
    const int k = i % 4;
    const double t0 = now_us();
    const plm_status st = plm_session_set_adapters(s, k < 3 ? sets[k] : NULL, counts[k]);
    us[i] = now_us() - t0;
    if (st != PLM_OK) return fail("switch");
  }
  qsort(us, (size_t)n, sizeof(double), cmp_double);
  printf("{\"switches\": %d, \"median_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f}\n", n, us[n / 2],
         us[(size_t)(0.99 * (n - 1))], us[n - 1]);
  free(us);
  plm_session_free(s);
  plm_adapter_free(a);
  plm_adapter_free(b);
  plm_model_free(model);
  return 0;
}
