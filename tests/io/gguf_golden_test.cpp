// Every GGUF in the golden set (llama.cpp-written models, adapters and vocabularies) opens, and re-writing it
// with GgufWriter reproduces its metadata and tensors. One test per file, so a failure names the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm {
namespace {

namespace fs = std::filesystem;

std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : PLM_DEFAULT_GOLDEN_DIR;
}

std::vector<std::string> GoldenFiles() {
  std::vector<std::string> out;
  for (const char* sub : {"models", "tokenizers"}) {
    std::error_code ec;
    const fs::path dir = fs::path(GoldenDir()) / sub;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".gguf") out.push_back(std::string(sub) + "/" + e.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufGoldenTest, GoldenDirectoryHasFiles) {
  if (!fs::is_directory(fs::path(GoldenDir()) / "models")) {
    GTEST_SKIP() << "golden directory '" << GoldenDir() << "' is absent (set PLM_GOLDEN_DIR)";
  }
  EXPECT_FALSE(GoldenFiles().empty());
}

class GgufGoldenFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufGoldenFileTest, OpensAndRewrites) {
  const std::string path = (fs::path(GoldenDir()) / GetParam()).string();
  if (!fs::exists(path)) GTEST_SKIP() << "'" << path << "' is absent (set PLM_GOLDEN_DIR)";
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->version() == 2 || f->version() == 3);
  EXPECT_FALSE(f->kvs().empty());
  EXPECT_NE(f->Find("general.architecture"), nullptr);
  for (const auto& t : f->tensors()) {
    ASSERT_NE(t.data, nullptr);
    EXPECT_EQ((f->data_offset() + t.offset) % f->alignment(), 0u) << t.name;
  }
  // Semantic round trip through the writer (copies every kv and tensor).
  GgufWriter w(static_cast<uint32_t>(f->alignment()));
  for (const auto& kv : f->kvs()) w.Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  for (const auto& t : f->tensors()) {
    ASSERT_TRUE(
        w.AddTensor(std::string(t.name), t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes).ok());
  }
  auto g = GgufFile::FromBytes(w.ToBytes(), "rewritten");
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->kvs().size(), f->kvs().size());
  ASSERT_EQ(g->tensors().size(), f->tensors().size());
  for (size_t k = 0; k < f->kvs().size(); ++k) {
    const GgufValue& a = f->kvs()[k].value;
    const GgufValue& b = g->kvs()[k].value;
    EXPECT_EQ(f->kvs()[k].key, g->kvs()[k].key);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.u, b.u);
    EXPECT_EQ(a.i, b.i);
    EXPECT_TRUE(a.f == b.f || (a.f != a.f && b.f != b.f));
    EXPECT_EQ(a.str, b.str);
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.strings, b.strings);
    if (a.raw != nullptr) {
      EXPECT_EQ(std::memcmp(a.raw, b.raw, a.count * GgufScalarSize(a.elem_type)), 0);
    }
  }
  for (size_t k = 0; k < f->tensors().size(); ++k) {
    const auto& a = f->tensors()[k];
    const auto& b = g->tensors()[k];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(ShapeString(a), ShapeString(b));
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
  }
}

TEST(GgufFuzzSeedTest, EverySeedParses) {
  std::error_code ec;
  int n = 0;
  for (const auto& e : fs::directory_iterator(PLM_FUZZ_GGUF_CORPUS, ec)) {
    auto f = GgufFile::Open(e.path().string());
    EXPECT_TRUE(f.ok()) << f.status().message();
    ++n;
  }
  EXPECT_GE(n, 3) << "seed corpus " << PLM_FUZZ_GGUF_CORPUS << " is missing (scripts/make-fuzz-corpus.sh)";
}

INSTANTIATE_TEST_SUITE_P(Golden, GgufGoldenFileTest, ::testing::ValuesIn(GoldenFiles()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GgufGoldenFileTest);

}  // namespace
}  // namespace pocketlm
