// The strongest check of `pocketlm quantize`: quantizing llama-kq-f32.gguf with a preset must reproduce the file
// llama.cpp's llama-quantize made from it (../shared/golden/models/llama-kq-<PRESET>.gguf): the same type and
// bytes for every tensor, the same tensor order, the same metadata, and in the end the same file, byte for byte.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "quantize/imatrix_file.h"
#include "quantize/quantize_model.h"
#include "quantize_test_util.h"

namespace pocketlm::quantize {
namespace {

using testing::GoldenModel;
using testing::TempDir;

// Golden file suffix -> preset name.
const std::map<std::string, std::string> kGolden = {
    {"Q8_0", "q8_0"},     {"Q4_0", "q4_0"},     {"Q2_K", "q2_k"}, {"Q3_K_M", "q3_k_m"},
    {"Q4_K_M", "q4_k_m"}, {"Q5_K_M", "q5_k_m"}, {"Q6_K", "q6_k"}, {"IQ4_NL", "iq4_nl"},
};

std::vector<char> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Serialized value for comparison (arrays included).
std::string ValueBytes(const GgufValue& v) {
  std::string s = std::to_string(static_cast<int>(v.type)) + ":" + std::to_string(v.u) + ":" + std::to_string(v.i) +
                  ":" + std::to_string(v.f) + ":" + std::string(v.str) + ":" + std::to_string(v.count);
  if (v.raw != nullptr) s.append(reinterpret_cast<const char*>(v.raw), v.count * GgufScalarSize(v.elem_type));
  for (auto str : v.strings) s += std::string(str) + '\0';
  for (const auto& it : v.items) s += ValueBytes(it);
  return s;
}

// Same metadata (keys in order, values), tensor order, shapes, types and bytes, and so the same file.
void ExpectSameFile(const std::string& out, const std::string& golden) {
  auto ours = GgufFile::Open(out);
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  auto ref = GgufFile::Open(golden);
  ASSERT_TRUE(ref.ok()) << ref.status().message();

  // Metadata: same keys in the same order with the same values (general.file_type, quantization_version, ...).
  ASSERT_EQ(ours->kvs().size(), ref->kvs().size());
  for (size_t i = 0; i < ref->kvs().size(); ++i) {
    EXPECT_EQ(ours->kvs()[i].key, ref->kvs()[i].key) << "key #" << i;
    EXPECT_EQ(ValueBytes(ours->kvs()[i].value), ValueBytes(ref->kvs()[i].value)) << ref->kvs()[i].key;
  }
  EXPECT_EQ(ours->GetInt("general.file_type").value(), ref->GetInt("general.file_type").value());
  EXPECT_EQ(ours->alignment(), ref->alignment());
  EXPECT_EQ(ours->data_offset(), ref->data_offset());

  // Tensors: same order, shape, type and bytes.
  ASSERT_EQ(ours->tensors().size(), ref->tensors().size());
  for (size_t i = 0; i < ref->tensors().size(); ++i) {
    const GgufTensorInfo& r = ref->tensors()[i];
    const GgufTensorInfo& q = ours->tensors()[i];
    EXPECT_EQ(q.name, r.name) << "tensor #" << i;
    const GgufTensorInfo* t = ours->FindTensor(r.name);
    ASSERT_NE(t, nullptr) << r.name;
    EXPECT_EQ(DTypeName(t->type), DTypeName(r.type)) << r.name;
    ASSERT_EQ(t->nbytes, r.nbytes) << r.name;
    for (int d = 0; d < 4; ++d) EXPECT_EQ(t->ne[d], r.ne[d]) << r.name;
    EXPECT_EQ(t->offset, r.offset) << r.name;
    if (t->type != r.type) continue;
    const uint64_t block = GetDTypeInfo(r.type).type_size;
    uint64_t differing = 0, first = UINT64_MAX;
    for (uint64_t off = 0; off < r.nbytes; off += block) {
      if (std::memcmp(t->data + off, r.data + off, block) != 0) {
        ++differing;
        if (first == UINT64_MAX) first = off / block;
      }
    }
    EXPECT_EQ(differing, 0u) << r.name << ": " << differing << " of " << r.nbytes / block << " " << DTypeName(r.type)
                             << " blocks differ, the first is #" << first;
  }

  // And so the whole file.
  // And so the whole file.
  EXPECT_TRUE(ReadAll(out) == ReadAll(golden)) << "files differ although every part above matched";
}

class GoldenTest : public ::testing::TestWithParam<std::pair<const std::string, std::string>> {};

TEST_P(GoldenTest, ReproducesLlamaQuantize) {
  const std::string suffix = GetParam().first;
  PLM_REQUIRE_GOLDEN("f32");
  PLM_REQUIRE_GOLDEN(suffix);
  TempDir dir;
  const std::string out = dir.file("out.gguf");
  QuantizeOptions o;
  o.preset = GetParam().second;
  o.n_threads = 2;
  auto summary = QuantizeModel(GoldenModel("f32"), out, o);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_EQ(summary->n_fallback, 0u);
  ExpectSameFile(out, GoldenModel(suffix));
}

// With llama.cpp's importance matrix: ../shared/golden/imatrix/llama-kq-<PRESET>-im.gguf, made by
// `llama-quantize --imatrix llama-kq.imatrix` (which also records the matrix in quantize.imatrix.* keys).
const char* const kImatrixGolden[] = {"Q2_K", "Q4_K_M", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S"};

class ImatrixGoldenTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ImatrixGoldenTest, ReproducesLlamaQuantizeWithImatrix) {
  const std::string preset = GetParam();
  PLM_REQUIRE_GOLDEN("f32");
  const std::filesystem::path dir = std::filesystem::path(testing::GoldenDir()) / "imatrix";
  const std::string golden = (dir / ("llama-kq-" + preset + "-im.gguf")).string();
  if (!std::filesystem::exists(golden)) GTEST_SKIP() << golden << " is absent";
  auto m = ReadImatrix((dir / "llama-kq.imatrix").string());
  ASSERT_TRUE(m.ok()) << m.status().message();
  TempDir tmp;
  const std::string out = tmp.file("out.gguf");
  QuantizeOptions o;
  o.preset = preset;
  o.n_threads = 2;
  o.imatrix = &m.value();
  o.imatrix_name = "llama-kq.imatrix";  // the path llama-quantize was given
  auto summary = QuantizeModel(GoldenModel("f32"), out, o);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  ExpectSameFile(out, golden);
}

INSTANTIATE_TEST_SUITE_P(quantize, ImatrixGoldenTest, ::testing::ValuesIn(kImatrixGolden),
                         [](const auto& p) { return std::string(p.param); });

INSTANTIATE_TEST_SUITE_P(quantize, GoldenTest, ::testing::ValuesIn(kGolden.begin(), kGolden.end()),
                         [](const auto& p) { return p.param.first; });

}  // namespace
}  // namespace pocketlm::quantize
