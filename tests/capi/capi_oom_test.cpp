// std::bad_alloc inside the library comes out of the C API as PLM_OUT_OF_MEMORY with a message, not as an
// exception or an abort: the address space is capped so a session's KV cache cannot be allocated.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "pocketlm/pocketlm.h"
#include "test_models.h"

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan reserves terabytes of address space: a cap would break it
#else
constexpr bool kSanitized = false;
#endif

TEST(CapiOutOfMemory, BadAllocBecomesAStatus) {
  if (kSanitized) GTEST_SKIP() << "address-space cap is incompatible with AddressSanitizer";
  const std::string path = pocketlm::testing_util::RandomModel();  // llama-tiny's shape
  plm_model* model = nullptr;
  ASSERT_EQ(plm_model_load(path.c_str(), nullptr, &model), PLM_OK) << plm_last_error();

  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
  // Room for 128 MiB more than the process maps now; a 2^20-position KV cache of the model
  // (2 layers, 32 key/value dims, f16) takes 2 x 128 MiB.
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  if (pages <= 0) GTEST_SKIP() << "no /proc/self/statm";
  rlimit capped = old;
  capped.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (128u << 20);
  ASSERT_EQ(setrlimit(RLIMIT_AS, &capped), 0);
  plm_session_params sp = plm_session_default_params();
  sp.n_ctx = 1 << 20;
  sp.n_threads = 1;
  plm_session* s = nullptr;
  const plm_status st = plm_session_create(model, &sp, &s);
  const std::string message = plm_last_error();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);

  EXPECT_EQ(st, PLM_OUT_OF_MEMORY) << message;
  EXPECT_EQ(s, nullptr);
  EXPECT_FALSE(message.empty());
  plm_session_free(s);
  plm_model_free(model);
}

}  // namespace
