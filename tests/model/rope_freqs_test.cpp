// Llama-3 style `rope_freqs.weight` (per-pair frequency divisors): all ones must reproduce the model without
// the tensor exactly; other factors must change the output. Built from a random llama model made here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "io/gguf/gguf_writer.h"
#include "model/context.h"
#include "test_models.h"

namespace pocketlm {
namespace {

std::string WriteWithRopeFreqs(const GgufFile& src, const std::vector<float>& factors, const std::string& out) {
  GgufWriter w;
  for (const auto& kv : src.kvs()) w.Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  for (const auto& t : src.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    EXPECT_TRUE(w.AddTensor(std::string(t.name), t.type, ne, t.data, t.nbytes).ok());
  }
  EXPECT_TRUE(w.AddTensor("rope_freqs.weight", DType::kF32, {static_cast<int64_t>(factors.size())}, factors.data(),
                          factors.size() * 4)
                  .ok());
  EXPECT_TRUE(w.WriteFile(out).ok());
  return out;
}

std::vector<float> Logits(const std::string& path) {
  auto m = Model::Load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  ContextParams p;
  p.n_ctx = 32;
  auto ctx = Context::Create(**m, p);
  std::vector<int32_t> toks = {1, 84, 238, 152, 237, 270, 66, 300};  // within the random vocabulary
  std::vector<float> out;
  EXPECT_TRUE((*ctx)->Eval(toks, true, &out).ok());
  return out;
}

TEST(RopeFreqs, OnesAreIdentityOtherFactorsChangeTheOutput) {
  const std::string base = testing_util::RandomModel();
  ASSERT_FALSE(base.empty());
  auto src = GgufFile::Open(base);
  ASSERT_TRUE(src.ok());
  const auto cfg = ReadModelConfig(*src);
  ASSERT_TRUE(cfg.ok());
  const size_t pairs = static_cast<size_t>(cfg->rope_dim / 2);
  const auto dir = std::filesystem::temp_directory_path() / ("plm_rope_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto ones = WriteWithRopeFreqs(*src, std::vector<float>(pairs, 1.0f), (dir / "ones.gguf").string());
  std::vector<float> f(pairs, 1.0f);
  f[pairs / 2] = 8.0f;  // slow down one mid frequency, as Llama-3's low-frequency scaling does
  const auto scaled = WriteWithRopeFreqs(*src, f, (dir / "scaled.gguf").string());

  const auto ref = Logits(base);
  EXPECT_EQ(Logits(ones), ref);
  const auto other = Logits(scaled);
  ASSERT_EQ(other.size(), ref.size());
  double diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, std::fabs(static_cast<double>(other[i]) - ref[i]));
  EXPECT_GT(diff, 1e-3);
  // Position 0 does not rotate at all, so its logits cannot depend on the factors.
  const size_t V = ref.size() / 8;
  for (size_t i = 0; i < V; ++i) ASSERT_EQ(other[i], ref[i]);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pocketlm
