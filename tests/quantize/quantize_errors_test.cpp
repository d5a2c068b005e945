// The quantize pipeline on inputs the golden files do not cover, its refusals, and the streaming writer. Every
// failure must leave the output directory as it was: no output, no temp file. Already quantized and half-precision
// inputs are checked on a random model of llama-kq's shape (test_models.h) everywhere, and against llama.cpp's own
// files of that kind when ../shared/golden is there.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_stream_writer.h"
#include "io/gguf/gguf_writer.h"
#include "quantize/quantize_model.h"
#include "quantize_test_util.h"
#include "tensor/quant/quant.h"
#include "test_models.h"

namespace pocketlm::quantize {
namespace {

namespace fs = std::filesystem;
using testing::GoldenModel;
using testing::MakeModel;
using testing::TempDir;

QuantizeOptions Preset(const std::string& name) {
  QuantizeOptions o;
  o.preset = name;
  return o;
}

TEST(quantize, ModelFallbackTypesForRowsOfNinetySix) {
  TempDir dir;
  const std::string in = MakeModel(dir, 96);
  const std::string out = dir.file("out.gguf");
  auto s = QuantizeModel(in, out, Preset("Q4_K_M"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->n_fallback, 4u);  // token_embd, attn_q (Q4_K -> Q5_0), attn_v, ffn_down (Q6_K -> Q8_0)
  auto q = GgufFile::Open(out);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto f = GgufFile::Open(in);
  const std::pair<const char*, DType> want[] = {
      {"output.weight", DType::kQ8_0},         {"token_embd.weight", DType::kQ5_0},
      {"blk.0.attn_norm.weight", DType::kF32}, {"blk.0.attn_q.weight", DType::kQ5_0},
      {"blk.0.attn_v.weight", DType::kQ8_0},   {"blk.0.ffn_down.weight", DType::kQ8_0}};
  for (const auto& [name, type] : want) {
    const GgufTensorInfo* t = q->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(DTypeName(t->type), DTypeName(type)) << name;
    // The values survive: relative RMS error well under what a wrong layout would give (~1).
    const GgufTensorInfo* src = f->FindTensor(name);
    std::vector<float> back(static_cast<size_t>(t->n_elements()));
    ASSERT_TRUE(quant::DequantizeRow(t->type, t->data, back.data(), t->n_elements()).ok());
    double err = 0, ref = 0;
    const auto* x = reinterpret_cast<const float*>(src->data);
    for (size_t i = 0; i < back.size(); ++i) {
      err += (back[i] - x[i]) * (back[i] - x[i]);
      ref += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(err / ref), 0.05) << name;
  }
  EXPECT_EQ(q->GetInt("general.file_type").value(), 15);
  EXPECT_EQ(q->GetInt("general.quantization_version").value(), 2);
}

TEST(quantize, ModelNoFallbackForLegacyTypesIsAClearError) {
  TempDir dir;
  const std::string in = MakeModel(dir, 80);  // 80 is not a multiple of Q4_0's 32
  auto s = QuantizeModel(in, dir.file("out.gguf"), Preset("Q4_0"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no fallback"), std::string::npos) << s.status().message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"small.gguf"});
}

TEST(quantize, ModelUnknownPresetListsTheValidOnes) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  auto s = QuantizeModel(in, dir.file("out.gguf"), Preset("q4_k_z"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument);
  for (const char* name : {"q4_k_z", "Q4_K_M", "Q8_0", "IQ4_XS", "Q3_K_S"}) {
    EXPECT_NE(s.status().message().find(name), std::string::npos) << s.status().message();
  }
  EXPECT_EQ(dir.Entries().size(), 1u);
}

TEST(quantize, ModelUnwritableOutputAndSamePath) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  auto missing_dir = QuantizeModel(in, dir.file("no/such/dir/out.gguf"), Preset("Q8_0"));
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), ErrorCode::kIo);
  auto onto_dir = QuantizeModel(in, dir.path().string(), Preset("Q8_0"));
  ASSERT_FALSE(onto_dir.ok());
  const auto before = fs::file_size(in);
  auto same = QuantizeModel(in, (dir.path() / "." / "small.gguf").string(), Preset("Q8_0"));
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.status().message().find("is the input"), std::string::npos) << same.status().message();
  EXPECT_EQ(fs::file_size(in), before);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"small.gguf"});
}

TEST(quantize, ModelNonFiniteWeightsAreRefused) {
  TempDir dir;
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 1);
  std::vector<float> v(256 * 4, 0.5f);
  v[300] = NAN;
  ASSERT_TRUE(w.AddTensor("blk.0.attn_q.weight", DType::kF32, {256, 4}, v.data(), v.size() * 4).ok());
  ASSERT_TRUE(w.WriteFile(dir.file("nan.gguf")).ok());
  auto s = QuantizeModel(dir.file("nan.gguf"), dir.file("out.gguf"), Preset("Q4_K_M"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("row 1"), std::string::npos) << s.status().message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"nan.gguf"});
}

// Requantizing `q8_0` to Q4_K_M is refused without --allow-requantize (nothing written) and then done with it,
// giving every tensor the type it has in `q4_k_m`.
void ExpectRequantizingNeedsConsent(const std::string& q8_0, const std::string& q4_k_m) {
  TempDir dir;
  const std::string out = dir.file("out.gguf");
  auto refused = QuantizeModel(q8_0, out, Preset("Q4_K_M"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("allow requantization"), std::string::npos) << refused.status().message();
  EXPECT_TRUE(dir.Entries().empty());
  QuantizeOptions o = Preset("Q4_K_M");
  o.allow_requantize = true;
  auto s = QuantizeModel(q8_0, out, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto q = GgufFile::Open(out);
  ASSERT_TRUE(q.ok());
  auto ref = GgufFile::Open(q4_k_m);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  for (const auto& t : ref->tensors()) EXPECT_EQ(q->FindTensor(t.name)->type, t.type) << t.name;
}

// `inputs` (F16 and BF16 files of one model) quantize to Q8_0 counting `n_weights`, with `q8_0`'s type per tensor.
void ExpectHalfPrecisionInputs(const std::vector<std::pair<std::string, std::string>>& inputs, uint64_t n_weights,
                               const std::string& q8_0) {
  for (const auto& [label, in] : inputs) {
    TempDir dir;
    auto s = QuantizeModel(in, dir.file("out.gguf"), Preset("q8_0"));
    ASSERT_TRUE(s.ok()) << label << ": " << s.status().message();
    EXPECT_EQ(s->n_weights, n_weights) << label;
    auto q = GgufFile::Open(dir.file("out.gguf"));
    auto ref = GgufFile::Open(q8_0);
    ASSERT_TRUE(q.ok() && ref.ok());
    for (const auto& t : ref->tensors()) EXPECT_EQ(q->FindTensor(t.name)->type, t.type) << label << " " << t.name;
  }
}

// A random f32 model of llama-kq's shape and `preset`s of it made by pocketlm, in `dir`.
std::string MadeFromRandomF32(const TempDir& dir, const std::string& preset) {
  const std::string f32 = pocketlm::testing_util::RandomModel(pocketlm::testing_util::KqShape(/*f16=*/false));
  const std::string out = dir.file(preset + ".gguf");
  auto s = QuantizeModel(f32, out, Preset(preset));
  EXPECT_TRUE(s.ok()) << preset << ": " << s.status().message();
  return out;
}

TEST(quantize, ModelRequantizingNeedsConsent) {
  TempDir made;
  ExpectRequantizingNeedsConsent(MadeFromRandomF32(made, "Q8_0"), MadeFromRandomF32(made, "Q4_K_M"));
}

// The same from llama.cpp's Q8_0 file: the requantized types are llama-quantize's Q4_K_M ones.
TEST(quantize, ModelRequantizingGoldenGivesLlamaCppsTypes) {
  PLM_REQUIRE_GOLDEN("Q8_0");
  PLM_REQUIRE_GOLDEN("Q4_K_M");
  ExpectRequantizingNeedsConsent(GoldenModel("Q8_0"), GoldenModel("Q4_K_M"));
}

TEST(quantize, ModelHalfPrecisionInputs) {
  TempDir made;
  const std::string f32 = pocketlm::testing_util::RandomModel(pocketlm::testing_util::KqShape(/*f16=*/false));
  const std::string f16 = pocketlm::testing_util::RandomModel(pocketlm::testing_util::KqShape(/*f16=*/true));
  ASSERT_FALSE(f32.empty() || f16.empty());
  auto in = GgufFile::Open(f32);
  ASSERT_TRUE(in.ok()) << in.status().message();
  uint64_t n_weights = 0;
  for (const auto& t : in->tensors()) n_weights += static_cast<uint64_t>(t.n_elements());
  ExpectHalfPrecisionInputs({{"F16", f16}, {"BF16", MadeFromRandomF32(made, "BF16")}}, n_weights,
                            MadeFromRandomF32(made, "Q8_0"));
}

// The same from llama.cpp's F16 and BF16 files, against its Q8_0 file.
TEST(quantize, ModelHalfPrecisionGoldenInputs) {
  PLM_REQUIRE_GOLDEN("Q8_0");
  PLM_REQUIRE_GOLDEN("F16");
  PLM_REQUIRE_GOLDEN("BF16");
  // 1705216: the golden model's parameters (shapes in shared/golden/README.md)
  ExpectHalfPrecisionInputs({{"F16", GoldenModel("F16")}, {"BF16", GoldenModel("BF16")}}, 1705216u,
                            GoldenModel("Q8_0"));
}

TEST(quantize, StreamWriterSameBytesAsGgufWriterAndNoPartialFile) {
  TempDir dir;
  GgufWriter whole;
  whole.SetString("general.architecture", "test");
  whole.SetI32Array("a", {1, 2, 3});
  std::vector<uint8_t> t0(100, 7), t1(34 * 2, 9);  // f32 [25], f16 [17, 2]: odd sizes exercise padding
  ASSERT_TRUE(whole.AddTensor("t0", DType::kF32, {25}, t0.data(), t0.size()).ok());
  ASSERT_TRUE(whole.AddTensor("t1", DType::kF16, {17, 2}, t1.data(), t1.size()).ok());

  std::vector<std::pair<std::string, GgufOwnedValue>> kvs;
  auto parsed = GgufFile::FromBytes(whole.ToBytes(), "whole");
  ASSERT_TRUE(parsed.ok());
  for (const auto& kv : parsed->kvs()) kvs.emplace_back(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  const std::vector<GgufTensorDecl> decls = {{"t0", DType::kF32, {25}}, {"t1", DType::kF16, {17, 2}}};
  {
    auto w = GgufStreamWriter::Create(dir.file("s.gguf"), 32, kvs, decls);
    ASSERT_TRUE(w.ok()) << w.status().message();
    ASSERT_TRUE(w->Append(t0.data(), 60).ok());
    ASSERT_TRUE(w->Append(t0.data() + 60, 40).ok());
    ASSERT_TRUE(w->Append(t1.data(), t1.size()).ok());
    EXPECT_FALSE(w->Append(t1.data(), 1).ok());  // past the last tensor
    ASSERT_TRUE(w->Commit().ok());
  }
  std::ifstream f(dir.file("s.gguf"), std::ios::binary);
  std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == whole.ToBytes());

  {
    auto w = GgufStreamWriter::Create(dir.file("partial.gguf"), 32, kvs, decls);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Append(t0.data(), t0.size()).ok());
    auto c = w->Commit();
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.message().find("t1"), std::string::npos) << c.message();
  }
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"s.gguf"});
  EXPECT_FALSE(GgufStreamWriter::Create(dir.file("x.gguf"), 48, kvs, decls).ok());  // not a power of two
  EXPECT_FALSE(GgufStreamWriter::Create(dir.file("x.gguf"), 32, kvs, {{"q", DType::kQ4_K, {100}}}).ok());
}

}  // namespace
}  // namespace pocketlm::quantize
