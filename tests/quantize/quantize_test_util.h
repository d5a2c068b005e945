// Shared helpers for the quantize tests: the golden directory and a fresh temp dir.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../base/test_tmpdir.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm::quantize::testing {

using pocketlm::testing_util::TempDir;

inline std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "";
}

inline std::string GoldenModel(const std::string& suffix) {
  return (std::filesystem::path(GoldenDir()) / "models" / ("llama-kq-" + suffix + ".gguf")).string();
}

// A one-layer llama-shaped model whose rows (`n_embd` values) need not be multiples of 256.
inline std::string MakeModel(const TempDir& dir, int64_t n_embd, const std::string& name = "small.gguf") {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 1);
  w.SetU32("llama.attention.head_count", 2);
  w.SetU32("llama.attention.head_count_kv", 1);
  uint32_t seed = 1;
  auto add = [&](const std::string& tname, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) {
      seed = seed * 1664525u + 1013904223u;
      x = static_cast<float>(seed >> 8) / 16777216.0f - 0.5f;
    }
    EXPECT_TRUE(w.AddTensor(tname, DType::kF32, ne, v.data(), v.size() * 4).ok());
  };
  add("token_embd.weight", {n_embd, 8});
  add("blk.0.attn_norm.weight", {n_embd});
  add("blk.0.attn_q.weight", {n_embd, n_embd});
  add("blk.0.attn_v.weight", {n_embd, n_embd / 2});
  add("blk.0.ffn_down.weight", {n_embd, n_embd});
  add("output.weight", {n_embd, 8});
  const std::string path = dir.file(name);
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

}  // namespace pocketlm::quantize::testing

// Skips the test when the golden model `suffix` is absent.
#define PLM_REQUIRE_GOLDEN(suffix)                                                         \
  if (::pocketlm::quantize::testing::GoldenDir().empty() ||                                \
      !std::filesystem::exists(::pocketlm::quantize::testing::GoldenModel(suffix))) {      \
    GTEST_SKIP() << "golden model '" << ::pocketlm::quantize::testing::GoldenModel(suffix) \
                 << "' is absent (set PLM_GOLDEN_DIR to ../shared/golden)";                \
  }
