// Adapter switching through the C API: a rank-16 adapter on every linear layer of a 24-layer base (the qwen2-0.5b
// layer count, so the same 168 projections get a low-rank term; widths do not change the switch cost) is
// switched on and off many times; the median must stay far below a millisecond (the target, < 100 us,
// is measured by bench/adapter_switch.sh). The base comes from tools/mkmodel (env PLM_MAKE_RANDOM_MODEL) and the
// adapters are written here, so the test runs in any clone.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "pocketlm/pocketlm.h"

namespace pocketlm {
namespace {

// Writes a random LoRA adapter of `rank` for every blk.*.{attn_*, ffn_*} projection of `base_path`.
void WriteAllLinearAdapter(const std::string& base_path, const std::string& out, int rank, uint32_t seed) {
  auto base = GgufFile::Open(base_path);
  ASSERT_TRUE(base.ok()) << base.status().message();
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", static_cast<float>(rank));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  int pairs = 0;
  for (const GgufTensorInfo& t : base->tensors()) {
    const std::string name(t.name);
    const bool linear = name.starts_with("blk.") && name.ends_with(".weight") && t.n_dims == 2 &&
                        (name.find(".attn_") != std::string::npos || name.find(".ffn_") != std::string::npos);
    if (!linear) continue;
    const int64_t n_in = t.ne[0], n_out = t.ne[1];
    std::vector<float> a(static_cast<size_t>(n_in * rank)), b(static_cast<size_t>(rank * n_out));
    for (float& x : a) x = normal(rng);
    for (float& x : b) x = normal(rng);
    ASSERT_TRUE(w.AddTensor(name + ".lora_a", DType::kF32, {n_in, rank}, a.data(), a.size() * 4).ok());
    ASSERT_TRUE(w.AddTensor(name + ".lora_b", DType::kF32, {rank, n_out}, b.data(), b.size() * 4).ok());
    ++pairs;
  }
  ASSERT_EQ(pairs, 24 * 7);
  ASSERT_TRUE(w.WriteFile(out).ok());
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(CapiAdapterSwitch, MedianWellUnderAMillisecond) {
  const char* make_model = std::getenv("PLM_MAKE_RANDOM_MODEL");
  if (make_model == nullptr) GTEST_SKIP() << "PLM_MAKE_RANDOM_MODEL is not set";
  const std::filesystem::path dir = "capi_switch_work";  // under the test's working directory (the build tree)
  std::filesystem::create_directories(dir);
  const std::string base = (dir / "base.gguf").string();
  const std::string cmd = std::string("'") + make_model + "' '" + base + "' --layers 24 --embd 64";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string lora_a = (dir / "a.gguf").string(), lora_b = (dir / "b.gguf").string();
  WriteAllLinearAdapter(base, lora_a, 16, 1);
  WriteAllLinearAdapter(base, lora_b, 16, 2);

  plm_model* model = nullptr;
  plm_adapter *a = nullptr, *b = nullptr;
  plm_session* s = nullptr;
  ASSERT_EQ(plm_model_load(base.c_str(), nullptr, &model), PLM_OK) << plm_last_error();
  ASSERT_EQ(plm_adapter_load(model, lora_a.c_str(), &a), PLM_OK) << plm_last_error();
  ASSERT_EQ(plm_adapter_load(model, lora_b.c_str(), &b), PLM_OK) << plm_last_error();
  ASSERT_EQ(plm_session_create(model, nullptr, &s), PLM_OK) << plm_last_error();

  // Alternate between three different sets so every call is a real switch (an unchanged set is a no-op).
  const plm_adapter_scale only_a[] = {{a, 1.0f}};
  const plm_adapter_scale only_b[] = {{b, 1.0f}};
  const plm_adapter_scale mixed[] = {{a, 0.5f}, {b, 0.5f}};
  struct Set {
    const plm_adapter_scale* items;
    size_t n;
  };
  const Set sets[] = {{only_a, 1}, {only_b, 1}, {mixed, 2}, {nullptr, 0}};
  constexpr int kSwitches = 2000;
  std::vector<double> us;
  us.reserve(kSwitches);
  for (int i = 0; i < kSwitches; ++i) {
    const Set& set = sets[i % 4];
    const auto t0 = std::chrono::steady_clock::now();
    const plm_status st = plm_session_set_adapters(s, set.items, set.n);
    const auto t1 = std::chrono::steady_clock::now();
    ASSERT_EQ(st, PLM_OK) << plm_last_error();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double median = Percentile(us, 0.5), p99 = Percentile(us, 0.99);
  std::printf("adapter switch over %d switches (168 rank-16 pairs per adapter): median %.1f us, p99 %.1f us\n",
              kSwitches, median, p99);
  EXPECT_LT(median, 1000.0);

  // The session still generates after all that switching.
  plm_generate_params p = plm_generate_default_params();
  p.temperature = 0.0f;
  p.max_tokens = 4;
  EXPECT_EQ(plm_session_set_adapters(s, only_a, 1), PLM_OK);
  EXPECT_EQ(plm_generate(s, "the", 3, &p, nullptr, nullptr, nullptr), PLM_OK) << plm_last_error();

  plm_session_free(s);
  plm_adapter_free(a);
  plm_adapter_free(b);
  plm_model_free(model);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pocketlm
