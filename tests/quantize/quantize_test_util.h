// Shared helpers for the quantize tests: the golden directory and a fresh temp dir.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "../base/test_tmpdir.h"

namespace pocketlm::quantize::testing {

using pocketlm::testing_util::TempDir;

inline std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "";
}

inline std::string GoldenModel(const std::string& suffix) {
  return (std::filesystem::path(GoldenDir()) / "models" / ("llama-kq-" + suffix + ".gguf")).string();
}

}  // namespace pocketlm::quantize::testing

// Skips the test when the golden model `suffix` is absent.
#define PLM_REQUIRE_GOLDEN(suffix)                                                         \
  if (::pocketlm::quantize::testing::GoldenDir().empty() ||                                \
      !std::filesystem::exists(::pocketlm::quantize::testing::GoldenModel(suffix))) {      \
    GTEST_SKIP() << "golden model '" << ::pocketlm::quantize::testing::GoldenModel(suffix) \
                 << "' is absent (set PLM_GOLDEN_DIR to ../shared/golden)";                \
  }
