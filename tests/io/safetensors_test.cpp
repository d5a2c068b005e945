// safetensors reader and writer: round trips, a file written by independent code (Python from the spec), and
// every kind of malformed header -> an error naming the file (never a crash).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "../base/test_tmpdir.h"
#include "io/safetensors/safetensors_reader.h"
#include "io/safetensors/safetensors_writer.h"
#include "tensor/half.h"

namespace pocketlm {
namespace {

using testing_util::TempDir;

// 8-byte little-endian N, the header text, then `data_bytes` bytes of data.
std::vector<uint8_t> Build(const std::string& header, size_t data_bytes = 0, uint64_t n = UINT64_MAX) {
  if (n == UINT64_MAX) n = header.size();
  // Assembled in a string: GCC 12 reports a false -Warray-bounds for vector::insert of an empty range here.
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  s += header;
  for (size_t i = 0; i < data_bytes; ++i) s.push_back(static_cast<char>(i * 7 + 1));
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string Error(std::vector<uint8_t> bytes) {
  auto f = SafetensorsFile::FromBytes(std::move(bytes), "bad.safetensors");
  if (f.ok()) return "";
  return f.status().message();
}

TEST(SafetensorsTest, WriterRoundTrip) {
  const std::vector<float> f32 = {1.0f, -2.0f, 3.5f, 0.25f, 8.0f, -0.0f};
  const uint16_t f16[3] = {F32ToF16(1.5f), F32ToF16(-3.0f), F32ToF16(65504.0f)};
  const uint16_t bf16[2] = {F32ToBF16(2.0f), F32ToBF16(-0.5f)};
  const uint8_t u8[5] = {1, 2, 3, 4, 5};
  const int64_t i64[1] = {-42};
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.SetMetadata("who", "pocketlm");
  ASSERT_TRUE(w.AddTensor("w.u8", StDType::kU8, {5}, u8, sizeof(u8)).ok());  // 1-byte type first: forces reordering
  ASSERT_TRUE(w.AddTensor("w.f32", StDType::kF32, {2, 3}, f32.data(), 24).ok());
  ASSERT_TRUE(w.AddTensor("w.f16", StDType::kF16, {3}, f16, sizeof(f16)).ok());
  ASSERT_TRUE(w.AddTensor("w.bf16", StDType::kBF16, {1, 2}, bf16, sizeof(bf16)).ok());
  ASSERT_TRUE(w.AddTensor("w.scalar", StDType::kI64, {}, i64, 8).ok());
  ASSERT_TRUE(w.AddTensor("w.empty", StDType::kF32, {0, 4}, nullptr, 0).ok());
  auto bytes = w.ToBytes();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();

  auto f = SafetensorsFile::FromBytes(*bytes, "mem");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->header_size() % 8, 0u);
  EXPECT_EQ(f->tensors().size(), 6u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("who"), "pocketlm");
  for (const auto& t : f->tensors()) {
    // Every tensor's data is aligned to its element size within the file (header padded to 8, big types first).
    EXPECT_EQ((8 + f->header_size() + t.begin) % StDTypeSize(t.dtype), 0u) << t.name;
  }
  const StTensor* t = f->Find("w.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, StDType::kF32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  auto v = f->ReadF32(*t);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, f32);
  auto h = f->ReadF32(*f->Find("w.f16"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (std::vector<float>{1.5f, -3.0f, 65504.0f}));
  auto bf = f->ReadF32(*f->Find("w.bf16"));
  ASSERT_TRUE(bf.ok());
  EXPECT_EQ(*bf, (std::vector<float>{2.0f, -0.5f}));
  const StTensor* s = f->Find("w.scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->n_elements(), 1);
  EXPECT_EQ(std::memcmp(s->bytes.data(), i64, 8), 0);
  EXPECT_EQ(f->Find("w.u8")->bytes.size(), 5u);
  EXPECT_EQ(f->Find("w.empty")->n_elements(), 0);
  EXPECT_EQ(f->Find("nope"), nullptr);

  // Other dtypes are listed but refused when used, naming the file and tensor.
  auto u = f->ReadF32(*f->Find("w.u8"));
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(u.status().message().find("unsupported dtype U8"), std::string::npos) << u.status().message();
  EXPECT_NE(u.status().message().find("'mem'"), std::string::npos);
  EXPECT_NE(u.status().message().find("'w.u8'"), std::string::npos);
}

TEST(SafetensorsTest, WriteFileIsAtomic) {
  TempDir dir;
  SafetensorsWriter w;
  const float x[2] = {1, 2};
  ASSERT_TRUE(w.AddTensor("x", StDType::kF32, {2}, x, 8).ok());
  ASSERT_TRUE(w.WriteFile(dir.file("a.safetensors")).ok());
  auto f = SafetensorsFile::Open(dir.file("a.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"a.safetensors"});  // no temp file left

  // A name that is not UTF-8 fails before anything is created.
  SafetensorsWriter bad;
  ASSERT_TRUE(bad.AddTensor("bad\xff", StDType::kF32, {2}, x, 8).ok());
  EXPECT_FALSE(bad.WriteFile(dir.file("b.safetensors")).ok());
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"a.safetensors"});
  EXPECT_FALSE(w.WriteFile(dir.file("missing/dir/c.safetensors")).ok());
}

// Copied, viewed and deferred tensors give the same file; a deferred tensor's fill runs at write time, and a fill
// that fails stops the write with nothing left at the target.
TEST(SafetensorsTest, ViewAndDeferredTensorsWriteTheSameFile) {
  TempDir dir;
  const float x[3] = {1.5f, -2, 3};
  const uint16_t h[2] = {0x3C00, 0xC000};
  SafetensorsWriter copied, lazy;
  ASSERT_TRUE(copied.AddTensor("x", StDType::kF32, {3}, x, sizeof(x)).ok());
  ASSERT_TRUE(copied.AddTensor("h", StDType::kF16, {1, 2}, h, sizeof(h)).ok());
  ASSERT_TRUE(lazy.AddTensorView("x", StDType::kF32, {3}, x, sizeof(x)).ok());
  int fills = 0;
  ASSERT_TRUE(lazy.AddTensorDeferred("h", StDType::kF16, {1, 2}, sizeof(h),
                                     [&](uint8_t* dst) {
                                       ++fills;
                                       std::memcpy(dst, h, sizeof(h));
                                       return Status::Ok();
                                     })
                  .ok());
  EXPECT_EQ(fills, 0);
  EXPECT_FALSE(lazy.AddTensorDeferred("y", StDType::kF16, {3}, 4, [](uint8_t*) { return Status::Ok(); }).ok());
  ASSERT_TRUE(copied.WriteFile(dir.file("a.safetensors")).ok());
  ASSERT_TRUE(lazy.WriteFile(dir.file("b.safetensors")).ok());
  EXPECT_EQ(fills, 1);
  std::ifstream a(dir.file("a.safetensors"), std::ios::binary), b(dir.file("b.safetensors"), std::ios::binary);
  const std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa, sb);
  auto bytes_lazy = lazy.ToBytes(), bytes_copied = copied.ToBytes();
  ASSERT_TRUE(bytes_lazy.ok() && bytes_copied.ok());
  EXPECT_EQ(*bytes_lazy, *bytes_copied);

  SafetensorsWriter failing;
  ASSERT_TRUE(failing.AddTensorView("x", StDType::kF32, {3}, x, sizeof(x)).ok());
  ASSERT_TRUE(
      failing.AddTensorDeferred("h", StDType::kF16, {2}, 4, [](uint8_t*) { return Corrupt("bad input"); }).ok());
  EXPECT_FALSE(failing.WriteFile(dir.file("c.safetensors")).ok());
  EXPECT_EQ(dir.Entries(), (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
}

TEST(SafetensorsTest, WriterRejectsBadTensors) {
  SafetensorsWriter w;
  const float x[4] = {};
  ASSERT_TRUE(w.AddTensor("x", StDType::kF32, {4}, x, 16).ok());
  EXPECT_FALSE(w.AddTensor("x", StDType::kF32, {4}, x, 16).ok());             // duplicate
  EXPECT_FALSE(w.AddTensor("__metadata__", StDType::kF32, {4}, x, 16).ok());  // reserved
  EXPECT_FALSE(w.AddTensor("", StDType::kF32, {4}, x, 16).ok());
  EXPECT_FALSE(w.AddTensor("y", StDType::kF32, {3}, x, 16).ok());  // size mismatch
  EXPECT_FALSE(w.AddTensor("y", StDType::kF32, {-1, -4}, x, 16).ok());
  EXPECT_FALSE(w.AddTensor("y", StDType::kF64, {INT64_MAX, 4}, x, 16).ok());
}

TEST(SafetensorsTest, EmptyHeaderIsValid) {
  // The reference writer's output for no tensors: "{}" padded to 8 bytes.
  auto f = SafetensorsFile::FromBytes(Build("{}      "), "empty");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_TRUE(f->tensors().empty());
}

struct BadCase {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* expect;  // a substring of the message
};

TEST(SafetensorsTest, MalformedFilesGiveErrors) {
  const std::string ok_entry = R"("t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  std::vector<BadCase> cases = {
      {"empty file", {}, "too short"},
      {"7 bytes", {1, 2, 3, 4, 5, 6, 7}, "too short"},
      {"header size over the limit", Build("{}", 0, 100'000'001), "exceeds"},
      {"huge header size", Build("{}", 0, UINT64_MAX - 1), "exceeds"},
      {"header past the end", Build("{}", 0, 64), "past the end"},
      {"zero header", Build("", 0), "JSON object"},
      {"not an object", Build("[1, 2]"), "JSON object"},
      {"truncated JSON", Build("{\"t\": {"), "not valid JSON"},
      {"invalid UTF-8", Build("{\"t\xff\": 1}"), "not valid JSON"},
      {"trailing garbage", Build("{} x"), "not valid JSON"},
      {"entry not an object", Build(R"({"t": 1})"), "'t': the entry is not an object"},
      {"missing dtype", Build(R"({"t": {"shape": [2], "data_offsets": [0, 8]}})", 8), "needs"},
      {"missing shape", Build(R"({"t": {"dtype": "F32", "data_offsets": [0, 8]}})", 8), "needs"},
      {"missing offsets", Build(R"({"t": {"dtype": "F32", "shape": [2]}})", 8), "needs"},
      {"dtype not a string", Build(R"({"t": {"dtype": 3, "shape": [2], "data_offsets": [0, 8]}})", 8), "dtype"},
      {"unknown dtype", Build(R"({"t": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}})", 8),
       "unknown dtype 'F17'"},
      {"shape not an array", Build(R"({"t": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}})", 8), "shape"},
      {"negative dim", Build(R"({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
       "non-negative integer"},
      {"float dim", Build(R"({"t": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", 8),
       "non-negative integer"},
      {"string dim", Build(R"({"t": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}})", 8),
       "non-negative integer"},
      {"dim beyond int64",
       Build(R"({"t": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 8]}})", 8),
       "non-negative integer"},
      {"element count overflows",
       Build(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8), "overflows"},
      {"byte count overflows",
       Build(R"({"t": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]}})", 8), "overflows"},
      {"offsets not a pair", Build(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}})", 8),
       "[begin, end]"},
      {"negative offset", Build(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", 8),
       "not non-negative integers"},
      {"end before begin", Build(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8), "end before"},
      {"offsets past the data", Build(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4),
       "past the end of the data"},
      {"size mismatch", Build(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), "needs 12"},
      {"overlap",
       Build(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
             8),
       "overlap"},
      {"gap",
       Build(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
             12),
       "gap"},
      {"data not covered", Build("{" + ok_entry + "}", 12), "cover 8 bytes"},
      {"duplicate tensor name", Build("{" + ok_entry + ", " + ok_entry + "}", 8), "names 't' twice"},
      {"duplicate field", Build(R"({"t": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}})", 8),
       "names 'dtype' twice"},
      {"metadata not an object", Build(R"({"__metadata__": [1]})"), "__metadata__"},
      {"metadata value not a string", Build(R"({"__metadata__": {"k": 1}})"), "__metadata__ value 'k'"},
      {"deep nesting", Build(R"({"t": {"shape": [[[[[1]]]]]}})"), "nested too deeply"},
  };
  for (auto& c : cases) {
    const std::string msg = Error(c.bytes);
    ASSERT_FALSE(msg.empty()) << c.what << ": accepted";
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("'bad.safetensors'"), std::string::npos) << c.what << ": " << msg;
  }
}

TEST(SafetensorsTest, ErrorsNameTheTensor) {
  const std::string msg = Error(Build(R"({"attn.q": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8));
  EXPECT_NE(msg.find("tensor 'attn.q'"), std::string::npos) << msg;
}

TEST(SafetensorsTest, EveryTruncationAndByteFlipIsHandled) {
  SafetensorsWriter w;
  const float x[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(w.AddTensor("a", StDType::kF32, {2, 3}, x, 24).ok());
  ASSERT_TRUE(w.AddTensor("b", StDType::kF16, {2}, x, 4).ok());
  w.SetMetadata("k", "v");
  auto good = w.ToBytes();
  ASSERT_TRUE(good.ok());
  for (size_t n = 0; n < good->size(); ++n) {
    std::vector<uint8_t> cut(good->begin(), good->begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(SafetensorsFile::FromBytes(std::move(cut), "cut").ok()) << "accepted a file cut to " << n;
  }
  // Flipping any header byte must give an error or a consistent file, never a crash or an out-of-bounds view.
  for (size_t i = 0; i < good->size() - 28; ++i) {
    for (uint8_t flip : {0x01, 0x20, 0x80}) {
      std::vector<uint8_t> bad = *good;
      bad[i] ^= flip;
      auto f = SafetensorsFile::FromBytes(std::move(bad), "flip");
      if (!f.ok()) continue;
      for (const auto& t : f->tensors()) EXPECT_EQ(t.bytes.size(), t.n_elements() * StDTypeSize(t.dtype));
    }
  }
}

// A file written from the spec by Python (numpy only): tests/io/make_safetensors.py.
void CheckPythonFile(bool padded) {
  TempDir dir;
  const std::string path = dir.file("py.safetensors");
  const std::string cmd = std::string("/usr/bin/python3 '") + PLM_MAKE_SAFETENSORS_PY + "' '" + path + "'" +
                          (padded ? "" : " --unpadded") + " 2>&1";
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->header_size() % 8 == 0, padded);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "h\xc3\xa9llo");
  ASSERT_EQ(f->tensors().size(), 6u);
  EXPECT_EQ(f->tensors()[0].name, "z.first");  // in data order, not header order

  const StTensor* t = f->Find("z.first");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  auto v = f->ReadF32(*t);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  auto h = f->ReadF32(*f->Find("m.f16"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)}));
  auto b = f->ReadF32(*f->Find("a.bf16"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(f->Find("a.bf16")->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(*b, (std::vector<float>{1.0f, -0.5f, 3.0f, 256.0f}));
  const StTensor* i = f->Find("i64");
  ASSERT_NE(i, nullptr);
  int64_t iv[2];
  std::memcpy(iv, i->bytes.data(), 16);
  EXPECT_EQ(iv[0], -1);
  EXPECT_EQ(iv[1], int64_t{1} << 40);
  EXPECT_FALSE(f->ReadF32(*i).ok());
  auto s = f->ReadF32(*f->Find("scalar"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, std::vector<float>{7.25f});
  EXPECT_EQ(f->Find("empty")->n_elements(), 0);
}

TEST(SafetensorsTest, ReadsFileWrittenByPython) {
  CheckPythonFile(/*padded=*/true);
}
TEST(SafetensorsTest, ReadsUnalignedFileWrittenByPython) {
  CheckPythonFile(/*padded=*/false);
}

}  // namespace
}  // namespace pocketlm
