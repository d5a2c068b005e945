// Prefill and decode speed: each repetition starts from an empty cache, evaluates n_prompt tokens in one call
// (prefill), then n_gen tokens one at a time (decode). Reports the median over repetitions, and the process's
// peak resident memory next to what weights that stay memory-mapped allow: file size + KV cache + 64 MiB.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "ops/quant_dot.h"
#include "options.h"

namespace pocketlm::cli {

namespace {
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

unsigned long long FileBytes(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<unsigned long long>(st.st_size) : 0;
}
}  // namespace

int BenchCommand(const BenchOptions& b) {
  const int n_prompt = b.n_prompt, n_gen = b.n_gen, reps = b.reps;
  const bool json = b.json;
  ModelOptions o = b.model;
  o.ctx = n_prompt + n_gen;
  auto lm = LoadModel(o);
  if (!lm.ok()) return Fail(lm.status());
  const int n_vocab = lm->model->config().n_vocab;
  // Deterministic pseudo-random prompt: speed does not depend on which tokens they are.
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  uint32_t x = 12345;
  for (auto& t : prompt) {
    x = x * 1664525u + 1013904223u;
    t = static_cast<int32_t>(x % static_cast<uint32_t>(n_vocab));
  }
  std::vector<double> prefill, decode;
  std::vector<float> logits;
  using clock = std::chrono::steady_clock;
  for (int r = 0; r < reps; ++r) {
    lm->ctx->Reset();
    auto t0 = clock::now();
    if (Status st = lm->ctx->Eval(prompt, false, &logits); !st.ok()) return Fail(st);
    auto t1 = clock::now();
    int32_t tok = prompt.back();
    for (int i = 0; i < n_gen; ++i) {
      if (Status st = lm->ctx->Eval(std::span<const int32_t>(&tok, 1), false, &logits); !st.ok()) return Fail(st);
      tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    auto t2 = clock::now();
    prefill.push_back(n_prompt / std::chrono::duration<double>(t1 - t0).count());
    decode.push_back(n_gen / std::chrono::duration<double>(t2 - t1).count());
    if (!json)
      std::fprintf(stderr, "run %d/%d: prefill %.1f tokens/s, decode %.1f tokens/s\n", r + 1, reps, prefill.back(),
                   decode.back());
  }
  const double p = Median(prefill), d = Median(decode);
  const auto weight_bytes = static_cast<unsigned long long>(DecodeWeightBytes(lm->model->weights()));
  const unsigned long long rss = PeakRssBytes(), file = FileBytes(b.model.model_path);
  const auto kv = static_cast<unsigned long long>(lm->ctx->kv_cache_bytes());
  const unsigned long long budget = file + kv + (64ull << 20);
  const std::string kernels = QuantKernelsName();
  if (json) {
    std::string path;  // escaped for a JSON string
    for (char c : b.model.model_path) {
      if (c == '"' || c == '\\') path += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) path += c;
    }
    std::printf(
        "{\"model\": \"%s\", \"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"reps\": %d, "
        "\"prefill_tps\": %.3f, \"decode_tps\": %.3f, \"decode_weight_bytes\": %llu, \"peak_rss_bytes\": %llu, "
        "\"file_bytes\": %llu, \"kv_cache_bytes\": %llu, \"kernels\": \"%s\"}\n",
        path.c_str(), b.model.threads, n_prompt, n_gen, reps, p, d, weight_bytes, rss, file, kv, kernels.c_str());
  } else {
    std::printf(
        "%s, %d threads, %s kernels: prefill %d tokens: %.1f tokens/s | decode %d tokens: %.1f tokens/s (median of "
        "%d); "
        "%.1f MB of weights per decoded token\n"
        "peak resident memory %.1f MiB (file %.1f MiB + KV cache %.1f MiB + 64 MiB = %.1f MiB: %s)\n",
        b.model.model_path.c_str(), b.model.threads, kernels.c_str(), n_prompt, p, n_gen, d, reps, weight_bytes / 1e6,
        rss / 1048576.0, file / 1048576.0, kv / 1048576.0, budget / 1048576.0, rss <= budget ? "within" : "OVER");
  }
  return 0;
}

}  // namespace pocketlm::cli
