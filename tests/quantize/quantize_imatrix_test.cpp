// `quantize` with an importance matrix on inputs the golden files do not cover: what the matrix changes (bytes,
// weighted error, metadata) and its refusals (a matrix for another model, zero-weight blocks). Failures leave no
// output behind.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "quantize/imatrix_file.h"
#include "quantize/quantize_model.h"
#include "quantize_test_util.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quantize {
namespace {

using testing::MakeModel;
using testing::TempDir;

// An entry per blk.0 weight of MakeModel's model (n_embd inputs each), the value of column j given by `value(j)`.
template <typename F>
ImportanceMatrix MatrixFor(int64_t n_embd, F value) {
  ImportanceMatrix m;
  m.chunk_count = 7;
  m.dataset = "calib.txt";
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight"}) {
    ImatrixEntry e;
    e.ncall = 7;
    e.n_values = n_embd;
    for (int64_t j = 0; j < n_embd; ++j) e.values.push_back(value(j));
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

QuantizeOptions WithMatrix(const std::string& preset, const ImportanceMatrix* m) {
  QuantizeOptions o;
  o.preset = preset;
  o.imatrix = m;
  o.imatrix_name = "model.imatrix";
  return o;
}

// The rows of `name` in `file` and in the f32 input, and the squared error each column makes, weighted by w.
double WeightedError(const std::string& in, const std::string& out, const std::string& name, const float* w) {
  auto a = GgufFile::Open(in);
  auto b = GgufFile::Open(out);
  EXPECT_TRUE(a.ok() && b.ok());
  const GgufTensorInfo* x = a->FindTensor(name);
  const GgufTensorInfo* q = b->FindTensor(name);
  const int64_t n = x->ne[0], rows = x->ne[1];
  const size_t row_bytes = q->nbytes / static_cast<size_t>(rows);
  std::vector<float> back(static_cast<size_t>(n));
  double err = 0;
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(quant::DequantizeRow(q->type, q->data + r * row_bytes, back.data(), n).ok());
    const auto* orig = reinterpret_cast<const float*>(x->data) + r * n;
    for (int64_t j = 0; j < n; ++j) err += w[j] * (orig[j] - back[j]) * (orig[j] - back[j]);
  }
  return err;
}

TEST(quantizeImatrix, WeightsLowerTheWeightedErrorAndAreRecorded) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  // A few columns matter 1000x more than the rest, as real activations' outlier channels do.
  const ImportanceMatrix m = MatrixFor(256, [](int64_t j) { return j % 37 == 0 ? 1000.0f : 1.0f; });
  for (const char* preset : {"Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS", "Q4_0"}) {
    SCOPED_TRACE(preset);
    QuantizeOptions plain;
    plain.preset = preset;
    ASSERT_TRUE(QuantizeModel(in, dir.file("plain.gguf"), plain).ok());
    ASSERT_TRUE(QuantizeModel(in, dir.file("weighted.gguf"), WithMatrix(preset, &m)).ok());
    const float* w = m.Find("blk.0.attn_q.weight");
    const double e_plain = WeightedError(in, dir.file("plain.gguf"), "blk.0.attn_q.weight", w);
    const double e_weighted = WeightedError(in, dir.file("weighted.gguf"), "blk.0.attn_q.weight", w);
    EXPECT_LT(e_weighted, 0.9 * e_plain) << "plain " << e_plain << ", weighted " << e_weighted;

    auto f = GgufFile::Open(dir.file("weighted.gguf"));
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->GetString("quantize.imatrix.file").value(), "model.imatrix");
    EXPECT_EQ(f->GetString("quantize.imatrix.dataset").value(), "calib.txt");
    EXPECT_EQ(f->GetInt("quantize.imatrix.entries_count").value(), 3);
    EXPECT_EQ(f->GetInt("quantize.imatrix.chunks_count").value(), 7);
    auto p = GgufFile::Open(dir.file("plain.gguf"));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->Find("quantize.imatrix.file"), nullptr);
  }
}

TEST(quantizeImatrix, MatrixOfAnotherModelIsRefused) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  const ImportanceMatrix m = MatrixFor(512, [](int64_t) { return 1.0f; });
  auto s = QuantizeModel(in, dir.file("out.gguf"), WithMatrix("Q4_K_M", &m));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("another model"), std::string::npos) << s.status().message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"small.gguf"});
}

TEST(quantizeImatrix, ZeroWeightBlocksAreRefusedNotWrittenAsNaN) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  // Columns 32..63 never active: an IQ4_NL block of 32 with all weights 0 (ggml's quantizer divides 0 by 0).
  const ImportanceMatrix m = MatrixFor(256, [](int64_t j) { return j >= 32 && j < 64 ? 0.0f : 1.0f; });
  auto s = QuantizeModel(in, dir.file("out.gguf"), WithMatrix("IQ4_NL", &m));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("zero weight"), std::string::npos) << s.status().message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"small.gguf"});
}

TEST(quantizeImatrix, LowBitPresetsNeedAMatrixWithEveryEntry) {
  TempDir dir;
  const std::string in = MakeModel(dir, 256);
  QuantizeOptions plain;
  plain.preset = "IQ2_XS";
  auto none = QuantizeModel(in, dir.file("out.gguf"), plain);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("needs an importance matrix"), std::string::npos) << none.status().message();
  ImportanceMatrix m = MatrixFor(256, [](int64_t j) { return 1.0f + static_cast<float>(j % 5); });
  m.entries.erase("blk.0.attn_q.weight");
  auto partial = QuantizeModel(in, dir.file("out.gguf"), WithMatrix("IQ2_XS", &m));
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.status().message().find("blk.0.attn_q.weight"), std::string::npos) << partial.status().message();
  EXPECT_NE(partial.status().message().find("no entry"), std::string::npos) << partial.status().message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"small.gguf"});
  // With every entry: IQ2_XS for attn_q, the preset's Q2_K for attn_v and ffn_down (its first eighth of layers).
  const ImportanceMatrix full = MatrixFor(256, [](int64_t j) { return 1.0f + static_cast<float>(j % 5); });
  ASSERT_TRUE(QuantizeModel(in, dir.file("out.gguf"), WithMatrix("IQ2_XS", &full)).ok());
  auto f = GgufFile::Open(dir.file("out.gguf"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->FindTensor("blk.0.attn_q.weight")->type, DType::kIQ2_XS);
  EXPECT_EQ(f->FindTensor("blk.0.attn_v.weight")->type, DType::kQ2_K);
  EXPECT_EQ(f->FindTensor("token_embd.weight")->type, DType::kQ2_K);
  EXPECT_EQ(f->FindTensor("output.weight")->type, DType::kQ5_K);
}

}  // namespace
}  // namespace pocketlm::quantize
