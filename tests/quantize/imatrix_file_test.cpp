// Importance-matrix files (quantize/imatrix_file.h): llama.cpp's binary format written and read back, the golden
// llama-imatrix file, files of older builds (no trailer), every malformed field as an error naming it, and the
// GGUF format of later llama.cpp (in_sum2 / counts).
#include "quantize/imatrix_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "quantize_test_util.h"

namespace pocketlm::quantize {
namespace {

using testing::GoldenDir;
using testing::TempDir;

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The binary format byte by byte, independently of WriteImatrix.
struct Bin {
  std::vector<uint8_t> b;
  Bin& I32(int32_t v) {
    uint32_t u = 0;
    std::memcpy(&u, &v, 4);
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(u >> (8 * i)));
    return *this;
  }
  Bin& F32(float v) {
    uint32_t u = 0;
    std::memcpy(&u, &v, 4);
    return I32(static_cast<int32_t>(u));
  }
  Bin& Str(const std::string& s) {
    I32(static_cast<int32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  // One entry: name, ncall, the values as stored (mean * ncall).
  Bin& Entry(const std::string& name, int32_t ncall, const std::vector<float>& stored) {
    Str(name).I32(ncall).I32(static_cast<int32_t>(stored.size()));
    for (float v : stored) F32(v);
    return *this;
  }
};

ImportanceMatrix SampleMatrix() {
  ImportanceMatrix m;
  m.chunk_count = 3;
  m.dataset = "wiki.train.raw";
  ImatrixEntry a;
  a.ncall = 3;
  a.n_values = 4;
  a.values = {0.1f, 2.5f, 0.0f, 1e-7f};
  m.entries["blk.0.attn_q.weight"] = a;
  ImatrixEntry b;
  b.ncall = 3;
  b.n_values = 6;
  b.values = {1, 2, 3, 4, 5, 6.75f};
  m.entries["blk.0.ffn_down.weight"] = b;
  ImatrixEntry c;  // a matrix no call reached: stored as is
  c.ncall = 0;
  c.n_values = 2;
  c.values = {1.0f, 0.5f};
  m.entries["blk.1.ffn_up.weight"] = c;
  return m;
}

void ExpectSameMatrix(const ImportanceMatrix& got, const ImportanceMatrix& want) {
  EXPECT_EQ(got.chunk_count, want.chunk_count);
  EXPECT_EQ(got.dataset, want.dataset);
  ASSERT_EQ(got.entries.size(), want.entries.size());
  for (const auto& [name, w] : want.entries) {
    auto it = got.entries.find(name);
    ASSERT_NE(it, got.entries.end()) << name;
    const ImatrixEntry& g = it->second;
    EXPECT_EQ(g.ncall, w.ncall) << name;
    EXPECT_EQ(g.n_values, w.n_values) << name;
    EXPECT_EQ(g.n_mat, 1) << name;
    ASSERT_EQ(g.values.size(), w.values.size()) << name;
    // Stored as mean * ncall and divided again on reading: equal up to the two roundings.
    for (size_t i = 0; i < w.values.size(); ++i) EXPECT_FLOAT_EQ(g.values[i], w.values[i]) << name << " #" << i;
    const float* f = got.Find(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f, g.values.data());
  }
}

// Expects `bytes` to be refused as kCorrupt with a message naming the file and containing `what`.
void ExpectCorrupt(const std::vector<uint8_t>& bytes, const std::string& what) {
  auto r = ParseImatrix(bytes, "bad.imatrix");
  ASSERT_FALSE(r.ok()) << "accepted; expected an error about: " << what;
  EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt) << r.status().message();
  EXPECT_NE(r.status().message().find("bad.imatrix"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
}

TEST(ImatrixFile, WriteReadRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("m.imatrix");
  const ImportanceMatrix m = SampleMatrix();
  ASSERT_TRUE(WriteImatrix(path, m).ok());
  auto r = ReadImatrix(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectSameMatrix(r.value(), m);
  EXPECT_EQ(r->chunk_size, 0);                                      // the binary format does not record it
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"m.imatrix"});  // no temp file left

  // The layout llama-quantize reads: entry count, entries by name with the values times ncall, the trailer.
  const std::vector<uint8_t> b = ReadBytes(path);
  Bin want;
  want.I32(3);
  want.Entry("blk.0.attn_q.weight", 3, {0.1f * 3, 2.5f * 3, 0.0f, 1e-7f * 3});
  want.Entry("blk.0.ffn_down.weight", 3, {3, 6, 9, 12, 15, 6.75f * 3});
  want.Entry("blk.1.ffn_up.weight", 0, {1.0f, 0.5f});
  want.I32(3).Str("wiki.train.raw");
  EXPECT_EQ(b, want.b);
}

TEST(ImatrixFile, EmptyDatasetNameRoundTrips) {
  TempDir dir;
  ImportanceMatrix m = SampleMatrix();
  m.dataset.clear();
  m.chunk_count = 0;
  ASSERT_TRUE(WriteImatrix(dir.file("m.imatrix"), m).ok());
  auto r = ReadImatrix(dir.file("m.imatrix"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectSameMatrix(r.value(), m);
}

TEST(ImatrixFile, FindUnknownNameOrMatrix) {
  const ImportanceMatrix m = SampleMatrix();
  EXPECT_EQ(m.Find("blk.9.attn_q.weight"), nullptr);
  EXPECT_EQ(m.Find("blk.0.attn_q.weight", 1), nullptr);
  EXPECT_EQ(m.Find("blk.0.attn_q.weight", -1), nullptr);
  EXPECT_NE(m.Find("blk.0.attn_q.weight", 0), nullptr);
}

TEST(ImatrixFile, GoldenLlamaImatrixFile) {
  const std::string dir = GoldenDir();
  const std::string path = dir + "/imatrix/llama-kq.imatrix";
  if (dir.empty() || !std::filesystem::exists(path)) {
    GTEST_SKIP() << "'" << path << "' is absent (set PLM_GOLDEN_DIR to ../shared/golden)";
  }
  auto r = ReadImatrix(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const ImportanceMatrix& m = r.value();
  EXPECT_EQ(m.chunk_count, 53);
  EXPECT_EQ(m.dataset, "calib.txt");
  ASSERT_EQ(m.entries.size(), 14u);
  for (int l = 0; l < 2; ++l) {
    for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      const std::string name = "blk." + std::to_string(l) + "." + t + ".weight";
      auto it = m.entries.find(name);
      ASSERT_NE(it, m.entries.end()) << name;
      const ImatrixEntry& e = it->second;
      EXPECT_EQ(e.ncall, 53) << name;
      EXPECT_EQ(e.n_mat, 1) << name;
      EXPECT_EQ(e.n_values, std::string(t) == "ffn_down" ? 768 : 256) << name;
      ASSERT_EQ(e.values.size(), static_cast<size_t>(e.n_values)) << name;
      for (float v : e.values) ASSERT_TRUE(std::isfinite(v) && v > 0) << name << ": " << v;
    }
    // q, k and v multiply the same input.
    const std::string p = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(m.entries.at(p + "attn_q.weight").values, m.entries.at(p + "attn_k.weight").values);
    EXPECT_EQ(m.entries.at(p + "attn_q.weight").values, m.entries.at(p + "attn_v.weight").values);
  }
  // The means, not the stored sums: blk.0.attn_q's largest stored value is 1.815 * 53 (checked with Python).
  float top = 0;
  for (float v : m.entries.at("blk.0.attn_q.weight").values) top = std::max(top, v);
  EXPECT_NEAR(top, 1.81518f, 1e-4f);

  // Every entry's row length is its weight's in the model the file was computed on.
  const std::string model = dir + "/models/llama-kq-f32.gguf";
  if (std::filesystem::exists(model)) {
    auto g = GgufFile::Open(model);
    ASSERT_TRUE(g.ok()) << g.status().message();
    for (const auto& [name, e] : m.entries) {
      const GgufTensorInfo* t = g->FindTensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->ne[0], e.n_values) << name;
    }
  }

  // Written again, it reads back to the same values.
  TempDir tmp;
  ASSERT_TRUE(WriteImatrix(tmp.file("again.imatrix"), m).ok());
  auto again = ReadImatrix(tmp.file("again.imatrix"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  ExpectSameMatrix(again.value(), m);
  EXPECT_EQ(ReadBytes(tmp.file("again.imatrix")).size(), ReadBytes(path).size());
}

TEST(ImatrixFile, FileWithoutTrailerReads) {
  // llama-imatrix builds before the trailer end after the last entry.
  Bin b;
  b.I32(2).Entry("blk.0.attn_q.weight", 10, {10, 20}).Entry("blk.0.attn_k.weight", 10, {5, 0});
  auto r = ParseImatrix(b.b, "old.imatrix");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->chunk_count, 0);
  EXPECT_EQ(r->dataset, "");
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries.at("blk.0.attn_q.weight").values, (std::vector<float>{1, 2}));
  EXPECT_EQ(r->entries.at("blk.0.attn_k.weight").values, (std::vector<float>{0.5f, 0}));
  EXPECT_EQ(r->entries.at("blk.0.attn_k.weight").ncall, 10);
}

TEST(ImatrixFile, EveryTruncationIsAnError) {
  Bin b;
  b.I32(2).Entry("blk.0.attn_q.weight", 4, {1, 2, 3}).Entry("blk.0.ffn_down.weight", 4, {4, 5});
  const size_t entries_end = b.b.size();
  b.I32(4).Str("calib.txt");
  const std::vector<uint8_t>& full = b.b;
  ASSERT_TRUE(ParseImatrix(full, "t.imatrix").ok());
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto r = ParseImatrix(prefix, "t.imatrix");
    if (n == entries_end) {  // exactly a file without the trailer
      EXPECT_TRUE(r.ok()) << r.status().message();
      continue;
    }
    ASSERT_FALSE(r.ok()) << "a prefix of " << n << " of " << full.size() << " bytes was accepted";
    EXPECT_EQ(r.status().code(), ErrorCode::kCorrupt) << n;
    EXPECT_NE(r.status().message().find("t.imatrix"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("ends inside"), std::string::npos) << r.status().message();
  }
}

TEST(ImatrixFile, MalformedFieldsAreNamed) {
  const std::vector<float> v = {1, 2};
  ExpectCorrupt(Bin().I32(0).b, "0 entries");
  ExpectCorrupt(Bin().I32(-5).b, "-5 entries");
  ExpectCorrupt(Bin().b, "the entry count");
  ExpectCorrupt(Bin().I32(1).I32(-1).b, "name length of -1");
  ExpectCorrupt(Bin().I32(1).I32(0).b, "name length of 0");
  ExpectCorrupt(Bin().I32(1).I32(std::numeric_limits<int32_t>::max()).b, "name length of 2147483647");
  ExpectCorrupt(Bin().I32(1).I32(std::numeric_limits<int32_t>::min()).b, "name length of -2147483648");
  ExpectCorrupt(Bin().I32(1).Str("w").I32(1).I32(-3).b, "-3 values");
  ExpectCorrupt(Bin().I32(1).Str("w").I32(1).I32(0).b, "0 values");
  ExpectCorrupt(Bin().I32(1).Str("w").I32(-1).I32(2).F32(1).F32(1).b, "-1 calls");
  // A huge value count with few bytes behind it: truncated, not an allocation of 8 GiB.
  ExpectCorrupt(Bin().I32(1).Str("w").I32(1).I32(std::numeric_limits<int32_t>::max()).F32(1).b, "the values of 'w'");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, {1, std::nanf("")}).b, "'w' value 1 is nan");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, {std::numeric_limits<float>::infinity(), 1}).b, "'w' value 0 is inf");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, {-std::numeric_limits<float>::infinity(), 1}).b, "'w' value 0 is -inf");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, {1, -0.5f}).b, "'w' value 1 is -0.5");
  ExpectCorrupt(Bin().I32(2).Entry("w", 1, v).Entry("w", 1, v).b, "two entries named 'w'");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(-1).Str("calib.txt").b, "chunk count of -1");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(1).I32(-2).b, "dataset name length of -2");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(1).I32(1 << 30).b, "dataset name length of 1073741824");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(1).I32(5).b, "the dataset name");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(1).b, "the dataset name length");
  ExpectCorrupt(Bin().I32(1).Entry("w", 1, v).I32(1).I32(5).b, "ends inside");
}

TEST(ImatrixFile, MissingFileIsNotFound) {
  TempDir dir;
  auto r = ReadImatrix(dir.file("absent.imatrix"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("absent.imatrix"), std::string::npos) << r.status().message();
}

// --- the GGUF format ---

struct GgufImatrix {
  GgufWriter w;
  GgufImatrix() {
    w.SetString("general.type", "imatrix");
    w.SetU32("imatrix.chunk_count", 7);
    w.SetU32("imatrix.chunk_size", 512);
    w.SetStringArray("imatrix.datasets", {"calib.txt", "more.txt"});
  }
  void Add(const std::string& name, DType type, const std::vector<int64_t>& ne, const std::vector<float>& v) {
    Status s;
    if (type == DType::kF32) {
      s = w.AddTensor(name, type, ne, v.data(), v.size() * 4);
    } else {  // f16 bits, the values do not matter
      std::vector<uint16_t> h(v.size(), 0x3c00);
      s = w.AddTensor(name, type, ne, h.data(), h.size() * 2);
    }
    ASSERT_TRUE(s.ok()) << s.message();
  }
  std::vector<uint8_t> Bytes() const { return w.ToBytes(); }
};

TEST(ImatrixFile, GgufFormat) {
  GgufImatrix g;
  g.Add("blk.0.attn_q.weight.in_sum2", DType::kF32, {4, 1}, {8, 4, 0, 2});
  g.Add("blk.0.attn_q.weight.counts", DType::kF32, {1, 1}, {4});
  // Two experts: the second never saw a token, so its columns weigh 1.
  g.Add("blk.0.ffn_up_exps.weight.in_sum2", DType::kF32, {3, 2}, {3, 6, 9, 5, 5, 5});
  g.Add("blk.0.ffn_up_exps.weight.counts", DType::kF32, {1, 2}, {3, 0});
  g.Add("blk.1.ffn_down.weight.in_sum2", DType::kF32, {2}, {1, 3});  // 1-D: one matrix
  g.Add("blk.1.ffn_down.weight.counts", DType::kF32, {1}, {2});
  auto r = ParseImatrix(g.Bytes(), "m.gguf");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const ImportanceMatrix& m = r.value();
  EXPECT_EQ(m.chunk_count, 7);
  EXPECT_EQ(m.chunk_size, 512);
  EXPECT_EQ(m.dataset, "calib.txt");
  ASSERT_EQ(m.entries.size(), 3u);

  const ImatrixEntry& q = m.entries.at("blk.0.attn_q.weight");
  EXPECT_EQ(q.ncall, 7);
  EXPECT_EQ(q.n_values, 4);
  EXPECT_EQ(q.n_mat, 1);
  EXPECT_EQ(q.values, (std::vector<float>{2, 1, 0, 0.5f}));

  const ImatrixEntry& x = m.entries.at("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(x.n_values, 3);
  EXPECT_EQ(x.n_mat, 2);
  EXPECT_EQ(x.values, (std::vector<float>{1, 2, 3, 1, 1, 1}));
  const float* e0 = m.Find("blk.0.ffn_up_exps.weight", 0);
  const float* e1 = m.Find("blk.0.ffn_up_exps.weight", 1);
  ASSERT_NE(e0, nullptr);
  ASSERT_NE(e1, nullptr);
  EXPECT_EQ(e0[2], 3.0f);
  EXPECT_EQ(e1 - e0, 3);
  EXPECT_EQ(e1[0], 1.0f);
  EXPECT_EQ(m.Find("blk.0.ffn_up_exps.weight", 2), nullptr);
  EXPECT_EQ(m.Find("blk.0.ffn_up_exps.weight.in_sum2"), nullptr);

  EXPECT_EQ(m.entries.at("blk.1.ffn_down.weight").values, (std::vector<float>{0.5f, 1.5f}));

  // ReadImatrix tells the formats apart by the magic.
  TempDir dir;
  {
    std::ofstream f(dir.file("m.gguf"), std::ios::binary);
    const std::vector<uint8_t> b = g.Bytes();
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  auto file = ReadImatrix(dir.file("m.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->entries.size(), 3u);

  // A matrix with two experts has no place in the binary format: refused, nothing written.
  Status s = WriteImatrix(dir.file("out.imatrix"), m);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.message().find("blk.0.ffn_up_exps.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("2 matrices"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.imatrix")));
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"m.gguf"});
}

TEST(ImatrixFile, GgufWithoutOptionalKeys) {
  GgufWriter w;
  const float sums[2] = {2, 4}, count = 2;
  ASSERT_TRUE(w.AddTensor("a.in_sum2", DType::kF32, {2, 1}, sums, 8).ok());
  ASSERT_TRUE(w.AddTensor("a.counts", DType::kF32, {1, 1}, &count, 4).ok());
  auto r = ParseImatrix(w.ToBytes(), "bare.gguf");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->chunk_count, 0);
  EXPECT_EQ(r->chunk_size, 0);
  EXPECT_EQ(r->dataset, "");
  EXPECT_EQ(r->entries.at("a").values, (std::vector<float>{1, 2}));
}

TEST(ImatrixFile, GgufErrorsAreNamed) {
  const std::string kShape = "must be f32 in_sum2 [n_values, n_mat] with f32 counts [1, n_mat]";
  {
    GgufImatrix g;
    g.Add("blk.0.attn_q.weight.in_sum2", DType::kF32, {4, 1}, {1, 1, 1, 1});
    ExpectCorrupt(g.Bytes(), "has no 'blk.0.attn_q.weight.counts' beside it");
  }
  {
    GgufImatrix g;
    g.Add("blk.0.attn_q.weight.in_sum2", DType::kF32, {4, 1}, {1, 1, 1, 1});
    g.Add("blk.0.attn_q.weight.counts", DType::kF16, {1, 1}, {1});
    ExpectCorrupt(g.Bytes(), "'blk.0.attn_q.weight' " + kShape);
  }
  {
    GgufImatrix g;
    g.Add("blk.0.attn_q.weight.in_sum2", DType::kF16, {4, 1}, {1, 1, 1, 1});
    g.Add("blk.0.attn_q.weight.counts", DType::kF32, {1, 1}, {1});
    ExpectCorrupt(g.Bytes(), "'blk.0.attn_q.weight' " + kShape);
  }
  {  // counts with two matrices for a sum of one
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 1}, {1, 1});
    g.Add("w.counts", DType::kF32, {1, 2}, {1, 1});
    ExpectCorrupt(g.Bytes(), "'w' " + kShape);
  }
  {  // counts laid out as a row of n_mat rather than [1, n_mat]
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 2}, {1, 1, 1, 1});
    g.Add("w.counts", DType::kF32, {2, 1}, {1, 1});
    ExpectCorrupt(g.Bytes(), "'w' " + kShape);
  }
  {  // no matrix at all
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 0}, {});
    g.Add("w.counts", DType::kF32, {1, 0}, {});
    ExpectCorrupt(g.Bytes(), "'w' " + kShape);
  }
  {  // three dimensions
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 1, 2}, {1, 1, 1, 1});
    g.Add("w.counts", DType::kF32, {1, 1}, {1});
    ExpectCorrupt(g.Bytes(), "'w' " + kShape);
  }
  {
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 1}, {1, std::nanf("")});
    g.Add("w.counts", DType::kF32, {1, 1}, {1});
    ExpectCorrupt(g.Bytes(), "entry 'w' value 1 is nan");
  }
  {
    GgufImatrix g;
    g.Add("w.in_sum2", DType::kF32, {2, 1}, {-4, 1});
    g.Add("w.counts", DType::kF32, {1, 1}, {2});
    ExpectCorrupt(g.Bytes(), "entry 'w' value 0 is -2");
  }
  {  // a GGUF file with no importance matrix in it (a model, say)
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    const float x[2] = {1, 2};
    ASSERT_TRUE(w.AddTensor("token_embd.weight", DType::kF32, {2, 1}, x, 8).ok());
    ExpectCorrupt(w.ToBytes(), "has no <name>.in_sum2 tensors");
  }
  {  // not a GGUF file after all
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F', 3, 0, 0};
    auto r = ParseImatrix(b, "short.gguf");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("short.gguf"), std::string::npos) << r.status().message();
  }
  for (int64_t bad : {int64_t{-1}, int64_t{1} << 31}) {  // counts a binary file could not hold
    for (const char* key : {"imatrix.chunk_count", "imatrix.chunk_size"}) {
      GgufImatrix g;
      GgufOwnedValue v;
      v.type = GgufType::kI64;
      v.i = bad;
      g.w.Set(key, v);
      g.Add("w.in_sum2", DType::kF32, {2, 1}, {1, 1});
      g.Add("w.counts", DType::kF32, {1, 1}, {1});
      ExpectCorrupt(g.Bytes(), std::string(key) + " is " + std::to_string(bad));
    }
  }
  {  // a key of the wrong type
    GgufImatrix g;
    g.w.SetString("imatrix.chunk_count", "seven");
    g.Add("w.in_sum2", DType::kF32, {2, 1}, {1, 1});
    g.Add("w.counts", DType::kF32, {1, 1}, {1});
    auto r = ParseImatrix(g.Bytes(), "key.gguf");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("imatrix.chunk_count"), std::string::npos) << r.status().message();
  }
}

// --- writing ---

TEST(ImatrixFile, WriteToDirectoryFailsAndLeavesNothing) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "out.imatrix");
  Status s = WriteImatrix(dir.file("out.imatrix"), SampleMatrix());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("out.imatrix"), std::string::npos) << s.message();
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"out.imatrix"});  // no temp file beside it
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() / "out.imatrix"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "out.imatrix"));
}

TEST(ImatrixFile, WriteIntoMissingDirectoryFails) {
  TempDir dir;
  Status s = WriteImatrix(dir.file("no/such/dir/out.imatrix"), SampleMatrix());
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(dir.Entries().empty());
}

TEST(ImatrixFile, WriteKeepsTheOldFileOnRefusal) {
  TempDir dir;
  const std::string path = dir.file("m.imatrix");
  ASSERT_TRUE(WriteImatrix(path, SampleMatrix()).ok());
  const std::vector<uint8_t> before = ReadBytes(path);
  ImportanceMatrix experts = SampleMatrix();
  experts.entries["blk.0.ffn_up_exps.weight"] = ImatrixEntry{1, {1, 1, 1, 1}, 2, 2};
  EXPECT_EQ(WriteImatrix(path, experts).code(), ErrorCode::kUnsupported);
  EXPECT_EQ(ReadBytes(path), before);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"m.imatrix"});
}

}  // namespace
}  // namespace pocketlm::quantize
