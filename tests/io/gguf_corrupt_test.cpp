// The reader refuses every malformed file with one Corrupt (or Unsupported) line naming the file and the field,
// and never reads outside the bytes it was given (run under ASan to see the latter).
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "gguf_test_util.h"
#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm {
namespace {

using testing_util::GgufBytes;

constexpr uint32_t kF32 = 0, kQ4_0 = 2;

// Expects FromBytes to fail with `code` and a single-line message containing the file name and `needle`.
void ExpectRejected(const std::vector<uint8_t>& bytes, ErrorCode code, const std::string& needle) {
  auto f = GgufFile::FromBytes(bytes, "bad.gguf");
  ASSERT_FALSE(f.ok()) << "accepted a file that should fail with: " << needle;
  const std::string& m = f.status().message();
  EXPECT_EQ(f.status().code(), code) << m;
  EXPECT_NE(m.find("bad.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find(needle), std::string::npos) << "message: " << m << "\nwanted: " << needle;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

void ExpectCorrupt(const std::vector<uint8_t>& bytes, const std::string& needle) {
  ExpectRejected(bytes, ErrorCode::kCorrupt, needle);
}

// A valid file with one f32 tensor of 8 values (32 bytes, so the file ends exactly at the end of the data).
std::vector<uint8_t> ValidOneTensor(GgufBytes kvs = {}, uint64_t n_kv = 0) {
  GgufBytes g;
  g.Header(1, n_kv);
  g.b.insert(g.b.end(), kvs.b.begin(), kvs.b.end());
  g.TensorInfo("w", {8}, kF32, 0).PadTo(32).Zeros(32);
  return g.b;
}

TEST(GgufCorruptTest, HandBuiltValidFileIsAccepted) {
  // Guards the builder: the corrupt variants below differ from this in one field only.
  auto f = GgufFile::FromBytes(ValidOneTensor(GgufBytes().KvU32("general.alignment", 32), 1), "ok.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].nbytes, 32u);
}

TEST(GgufCorruptTest, EmptyFile) {
  ExpectCorrupt({}, "too short");
}

TEST(GgufCorruptTest, EveryTruncationFails) {
  // A small file with every value type and two tensors, whose last tensor ends exactly at end of file: every
  // proper prefix lacks something the header promises.
  GgufWriter w;
  GgufOwnedValue i8;
  i8.type = GgufType::kI8;
  i8.i = -5;
  w.Set("a.i8", i8);
  w.SetU32("a.u32", 7);
  w.SetU64("a.u64", 9);
  w.SetF32("a.f32", 1.5f);
  w.SetBool("a.bool", true);
  w.SetString("a.str", "text\xC3\xA9");
  w.SetStringArray("a.strs", {"x", "yz"});
  w.SetI32Array("a.i32s", {1, 2, 3});
  GgufOwnedValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  GgufOwnedValue inner;
  inner.type = GgufType::kArray;
  inner.elem_type = GgufType::kU8;
  inner.raw = {1, 2};
  inner.count = 2;
  nested.items = {inner};
  nested.count = 1;
  w.Set("a.nested", nested);
  std::vector<uint8_t> q(18, 1);
  std::vector<float> v(8, 2.0f);
  ASSERT_TRUE(w.AddTensor("q", DType::kQ4_0, {32}, q.data(), q.size()).ok());
  ASSERT_TRUE(w.AddTensor("v", DType::kF32, {8}, v.data(), v.size() * 4).ok());
  const auto bytes = w.ToBytes();
  ASSERT_TRUE(GgufFile::FromBytes(bytes, "full.gguf").ok());
  ASSERT_EQ(bytes.size() % 32, 0u);
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes, so ASan sees any read past the end.
    auto f =
        GgufFile::FromBytes(std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n)), "cut.gguf");
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " of " << bytes.size() << " bytes was accepted";
    EXPECT_EQ(f.status().code(), ErrorCode::kCorrupt) << n << ": " << f.status().message();
    EXPECT_NE(f.status().message().find("cut.gguf"), std::string::npos);
    EXPECT_EQ(f.status().message().find('\n'), std::string::npos);
  }
}

TEST(GgufCorruptTest, WrongMagic) {
  auto b = ValidOneTensor();
  std::memcpy(b.data(), "GGML", 4);
  ExpectCorrupt(b, "magic");
}

TEST(GgufCorruptTest, UnsupportedVersions) {
  for (uint32_t version : {0u, 1u, 4u, 99u, 0xFFFFFFFFu}) {
    auto b = ValidOneTensor();
    std::memcpy(b.data() + 4, &version, 4);
    ExpectRejected(b, ErrorCode::kUnsupported, "version " + std::to_string(version));
  }
  // Version 2 has the same layout as 3 and is accepted.
  auto b = ValidOneTensor();
  const uint32_t v2 = 2;
  std::memcpy(b.data() + 4, &v2, 4);
  EXPECT_TRUE(GgufFile::FromBytes(b, "v2.gguf").ok());
}

TEST(GgufCorruptTest, CountsLargerThanTheFile) {
  auto b = ValidOneTensor();
  const uint64_t huge = 1ull << 40;
  auto kv = b;
  std::memcpy(kv.data() + 16, &huge, 8);
  ExpectCorrupt(kv, "metadata pairs");
  auto kv_max = b;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  std::memcpy(kv_max.data() + 16, &max, 8);
  ExpectCorrupt(kv_max, "metadata pairs");
  auto tn = b;
  std::memcpy(tn.data() + 8, &huge, 8);
  ExpectCorrupt(tn, "tensors");
  // Plausible-looking counts that still exceed the entries present.
  auto kv2 = b;
  const uint64_t two = 2;
  std::memcpy(kv2.data() + 16, &two, 8);
  EXPECT_FALSE(GgufFile::FromBytes(kv2, "bad.gguf").ok());
  auto tn2 = b;
  std::memcpy(tn2.data() + 8, &two, 8);
  EXPECT_FALSE(GgufFile::FromBytes(tn2, "bad.gguf").ok());
}

TEST(GgufCorruptTest, StringLengthBeyondFile) {
  GgufBytes key;
  key.U64(1ull << 40).U32(4);  // key length, then garbage
  ExpectCorrupt(ValidOneTensor(key, 1), "metadata key #0");
  GgufBytes value;
  value.KeyType("general.name", GgufType::kString).U64(std::numeric_limits<uint64_t>::max());
  ExpectCorrupt(ValidOneTensor(value, 1), "metadata 'general.name'");
  GgufBytes arr;
  arr.KeyType("tok", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kString)).U64(1).U64(1ull << 50);
  ExpectCorrupt(ValidOneTensor(arr, 1), "metadata 'tok'[0]");
  GgufBytes g;
  g.Header(1, 0).U64(1000).U32(1);  // tensor name length
  g.Zeros(64);
  ExpectCorrupt(g.b, "name of tensor #0");
}

TEST(GgufCorruptTest, InvalidUtf8) {
  ExpectCorrupt(ValidOneTensor(GgufBytes().KvU32("bad\xC0\xAFkey", 1), 1), "metadata key #0 is not valid UTF-8");
  ExpectCorrupt(ValidOneTensor(GgufBytes().KvString("general.name", "a\xED\xA0\x80"), 1),
                "metadata 'general.name' is not valid UTF-8");
  GgufBytes arr;
  arr.KeyType("tokens", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kString)).U64(2).Str("ok").Str("\xFF");
  ExpectCorrupt(ValidOneTensor(arr, 1), "metadata 'tokens'[1] is not valid UTF-8");
  GgufBytes g;
  g.Header(1, 0).TensorInfo("w\xF0\x9F", {8}, kF32, 0).PadTo(32).Zeros(32);
  ExpectCorrupt(g.b, "name of tensor #0 is not valid UTF-8");
}

TEST(GgufCorruptTest, UnknownValueTypes) {
  ExpectCorrupt(ValidOneTensor(GgufBytes().Str("k").U32(13).U32(0), 1), "metadata 'k' has unknown value type 13");
  ExpectCorrupt(ValidOneTensor(GgufBytes().Str("k").U32(0x80000000u).U32(0), 1), "unknown value type");
  GgufBytes arr;
  arr.KeyType("k", GgufType::kArray).U32(13).U64(1).U64(0);
  ExpectCorrupt(ValidOneTensor(arr, 1), "array metadata 'k' has unknown element type 13");
}

TEST(GgufCorruptTest, BadBooleans) {
  ExpectCorrupt(ValidOneTensor(GgufBytes().KeyType("flag", GgufType::kBool).U8(2), 1), "bool metadata 'flag'");
  GgufBytes arr;
  arr.KeyType("flags", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kBool)).U64(2).U8(1).U8(7);
  ExpectCorrupt(ValidOneTensor(arr, 1), "array metadata 'flags' holds a bool");
}

TEST(GgufCorruptTest, ArraysLongerThanTheFile) {
  GgufBytes nums;
  nums.KeyType("k", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kU64)).U64(1ull << 61);
  ExpectCorrupt(ValidOneTensor(nums, 1), "array metadata 'k' of 2305843009213693952 u64");
  GgufBytes strs;
  strs.KeyType("k", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kString)).U64(1ull << 60);
  ExpectCorrupt(ValidOneTensor(strs, 1), "more than the file holds");
}

TEST(GgufCorruptTest, DeeplyNestedArrays) {
  GgufBytes g;
  g.KeyType("deep", GgufType::kArray);
  for (int d = 0; d < 64; ++d) g.U32(static_cast<uint32_t>(GgufType::kArray)).U64(1);
  g.U32(0).U64(0);
  ExpectCorrupt(ValidOneTensor(g, 1), "nests arrays deeper");
}

TEST(GgufCorruptTest, DuplicateKeysAndTensorNames) {
  ExpectCorrupt(ValidOneTensor(GgufBytes().KvU32("a.b", 1).KvString("a.b", "x"), 2), "duplicate metadata key 'a.b'");
  GgufBytes g;
  g.Header(2, 0).TensorInfo("w", {8}, kF32, 0).TensorInfo("w", {8}, kF32, 32).PadTo(32).Zeros(64);
  ExpectCorrupt(g.b, "duplicate tensor name 'w'");
}

std::vector<uint8_t> OneTensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset = 0,
                               size_t data_bytes = 64) {
  GgufBytes g;
  g.Header(1, 0).TensorInfo("w", ne, type, offset).PadTo(32).Zeros(data_bytes);
  return g.b;
}

TEST(GgufCorruptTest, BadDimensionCounts) {
  ExpectCorrupt(OneTensor({}, kF32), "tensor 'w' has 0 dimensions");
  ExpectCorrupt(OneTensor({1, 1, 1, 1, 1}, kF32), "tensor 'w' has 5 dimensions");
  GgufBytes g;
  g.Header(1, 0).Str("w").U32(0xFFFFFFFFu).Zeros(64);
  ExpectCorrupt(g.b, "tensor 'w' has 4294967295 dimensions");
}

TEST(GgufCorruptTest, ShapeOverflow) {
  ExpectCorrupt(OneTensor({1ull << 32, 1ull << 32}, kF32), "shape of tensor 'w' overflows");
  ExpectCorrupt(OneTensor({3, 1ull << 62}, kF32), "shape of tensor 'w' overflows");
  ExpectCorrupt(OneTensor({1ull << 63}, kF32), "tensor 'w' has a negative dimension");
  // Fits int64 elements but not bytes (or not the file).
  ExpectCorrupt(OneTensor({1ull << 62}, 28 /* f64 */), "tensor 'w'");
}

TEST(GgufCorruptTest, UnknownTensorType) {
  for (uint32_t t : {4u, 5u, 31u, 99u})
    ExpectCorrupt(OneTensor({8}, t), "tensor 'w' has unknown storage type " + std::to_string(t));
}

TEST(GgufCorruptTest, RowNotAMultipleOfBlockSize) {
  ExpectCorrupt(OneTensor({33}, kQ4_0), "tensor 'w' row length 33 is not a multiple of the q4_0 block size 32");
  ExpectCorrupt(OneTensor({128, 2}, 14 /* q6_K */), "q6_K block size 256");
  // Only ne[0] must be a multiple: [32, 3] q4_0 is fine.
  EXPECT_TRUE(GgufFile::FromBytes(OneTensor({32, 3}, kQ4_0), "ok.gguf").ok());
}

TEST(GgufCorruptTest, MisalignedOffset) {
  ExpectCorrupt(OneTensor({8}, kF32, 4, 96), "tensor 'w' data offset 4 is not a multiple of the alignment 32");
  // With general.alignment 8 the same offset 8 is fine, 4 is not.
  GgufBytes ok;
  ok.Header(1, 1).KvU32("general.alignment", 8).TensorInfo("w", {8}, kF32, 8).PadTo(8).Zeros(64);
  EXPECT_TRUE(GgufFile::FromBytes(ok.b, "ok.gguf").ok());
  GgufBytes bad;
  bad.Header(1, 1).KvU32("general.alignment", 8).TensorInfo("w", {8}, kF32, 4).PadTo(8).Zeros(64);
  ExpectCorrupt(bad.b, "alignment 8");
}

TEST(GgufCorruptTest, DataBeyondEndOfFile) {
  ExpectCorrupt(OneTensor({8}, kF32, 0, 31), "data of tensor 'w' (offset 0, 32 bytes) runs past the end");
  ExpectCorrupt(OneTensor({8}, kF32, 32, 63), "data of tensor 'w' (offset 32, 32 bytes) runs past the end");
  ExpectCorrupt(OneTensor({8}, kF32, 1ull << 60, 64), "data of tensor 'w'");
  ExpectCorrupt(OneTensor({8}, kF32, 0xFFFFFFFFFFFFFFE0ull, 64), "data of tensor 'w'");
  // No padding at all after the tensor infos: the data section would start past the end.
  GgufBytes g;
  g.Header(1, 0).TensorInfo("w", {8}, kF32, 0);
  ASSERT_NE(g.b.size() % 32, 0u);
  ExpectCorrupt(g.b, "past the end");
}

TEST(GgufCorruptTest, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
    ExpectCorrupt(ValidOneTensor(GgufBytes().KvU32("general.alignment", a), 1),
                  "general.alignment " + std::to_string(a) + " is not a power of two");
  }
  GgufBytes u64;
  u64.KeyType("general.alignment", GgufType::kU64).U64(32);
  ExpectCorrupt(ValidOneTensor(u64, 1), "general.alignment must be u32, is u64");
  ExpectCorrupt(ValidOneTensor(GgufBytes().KvString("general.alignment", "32"), 1),
                "general.alignment must be u32, is string");
}

}  // namespace
}  // namespace pocketlm
