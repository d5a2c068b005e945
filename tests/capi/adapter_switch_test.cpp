// Adapter switching through the C API: a rank-16 adapter on every linear layer of a 24-layer base (the qwen2-0.5b
// layer count, so the same 168 projections get a low-rank term; widths do not change the switch cost) is
// switched on and off many times; the median must stay far below a millisecond (the target, < 100 us,
// is measured by bench/adapter_switch.sh). The base and the adapters are made here (tools/mkmodel/random_model.h), so
// the test runs in any clone.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "pocketlm/pocketlm.h"
#include "random_model.h"

namespace pocketlm {
namespace {

// A random LoRA adapter of `rank` for every blk.*.{attn_*, ffn_*} projection of `base_path`.
void WriteAllLinearAdapter(const std::string& base_path, const std::string& out, int rank, uint32_t seed) {
  mkmodel::RandomLoraOptions o;
  o.seed = seed;
  o.rank = rank;
  o.alpha = static_cast<float>(rank);
  o.std = 0.05f;
  auto made = mkmodel::WriteRandomLora(base_path, out, o);
  ASSERT_TRUE(made.ok()) << made.status().message();
  ASSERT_EQ(made->n_pairs, 24 * 7);
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(CapiAdapterSwitch, MedianWellUnderAMillisecond) {
  const std::filesystem::path dir = "capi_switch_work";  // under the test's working directory (the build tree)
  std::filesystem::create_directories(dir);
  const std::string base = (dir / "base.gguf").string();
  mkmodel::RandomModelOptions mo;
  mo.n_layer = 24;
  ASSERT_TRUE(mkmodel::WriteRandomModel(base, mo).ok());
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
