// GgufWriter -> GgufFile round trips: every metadata type, tensors of several types and shapes, alignment, and
// the atomic WriteFile.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <type_traits>

#include "../base/test_tmpdir.h"
#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"

namespace pocketlm {
namespace {

using testing_util::TempDir;

// The value of a Result, or T{} after recording a failure (keeps one bad getter from aborting the test).
template <typename T>
T Val(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().message();
  if constexpr (std::is_pointer_v<T>) {
    static const std::remove_cv_t<std::remove_pointer_t<T>> kEmpty{};
    return r.ok() ? std::move(r).value() : &kEmpty;
  } else {
    return r.ok() ? std::move(r).value() : T{};
  }
}

GgufOwnedValue Scalar(GgufType t, uint64_t u, int64_t i, double f) {
  GgufOwnedValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

template <typename T>
GgufOwnedValue NumArray(GgufType elem, const std::vector<T>& xs) {
  GgufOwnedValue v;
  v.type = GgufType::kArray;
  v.elem_type = elem;
  v.count = xs.size();
  v.raw.resize(xs.size() * sizeof(T));
  if (!xs.empty()) std::memcpy(v.raw.data(), xs.data(), v.raw.size());
  return v;
}

template <typename T>
std::vector<T> ArrayValues(const GgufValue& v) {
  std::vector<T> out(v.count);
  if (v.count) std::memcpy(out.data(), v.raw, v.count * sizeof(T));
  return out;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Every scalar type at its extremes, strings (empty, multi-byte UTF-8), arrays of numbers and strings, and an
// array of arrays (the tokenizer merges of some converters use nested arrays).
void AddAllMetadata(GgufWriter& w) {
  w.Set("t.u8", Scalar(GgufType::kU8, 255, 0, 0));
  w.Set("t.i8", Scalar(GgufType::kI8, 0, -128, 0));
  w.Set("t.u16", Scalar(GgufType::kU16, 65535, 0, 0));
  w.Set("t.i16", Scalar(GgufType::kI16, 0, -32768, 0));
  w.SetU32("t.u32", 4294967295u);
  w.SetI32("t.i32", -2147483647 - 1);
  w.SetU64("t.u64", 18446744073709551615ull);
  w.Set("t.i64", Scalar(GgufType::kI64, 0, INT64_MIN, 0));
  w.SetF32("t.f32", 0.1f);
  w.Set("t.f64", Scalar(GgufType::kF64, 0, 0, -1.0 / 3.0));
  w.SetBool("t.bool_true", true);
  w.SetBool("t.bool_false", false);
  w.SetString("t.string", "h\xC3\xA9llo \xF0\x9F\x98\x80");
  w.SetString("t.empty", "");
  w.SetStringArray("t.strings", {"a", "", "\xE2\x82\xAC", std::string(300, 'x')});
  w.SetF32Array("t.f32s", {1.5f, -2.25f, 3e38f});
  w.SetI32Array("t.i32s", {-1, 0, 2147483647});
  w.Set("t.u8s", NumArray<uint8_t>(GgufType::kU8, {0, 1, 255}));
  w.Set("t.i16s", NumArray<int16_t>(GgufType::kI16, {-32768, 7}));
  w.Set("t.u64s", NumArray<uint64_t>(GgufType::kU64, {0, 18446744073709551615ull}));
  w.Set("t.f64s", NumArray<double>(GgufType::kF64, {3.141592653589793, -0.0}));
  w.Set("t.bools", NumArray<uint8_t>(GgufType::kBool, {1, 0, 1}));
  w.SetI32Array("t.empty_array", {});
  GgufOwnedValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.items.push_back(NumArray<int32_t>(GgufType::kI32, {1, 2, 3}));
  GgufOwnedValue inner_strings;
  inner_strings.type = GgufType::kArray;
  inner_strings.elem_type = GgufType::kString;
  inner_strings.strings = {"p", "q"};
  inner_strings.count = 2;
  nested.items.push_back(inner_strings);
  nested.count = nested.items.size();
  w.Set("t.nested", nested);
}

void ExpectAllMetadata(const GgufFile& f) {
  auto type_of = [&](const char* k) { return f.Find(k) ? f.Find(k)->type : static_cast<GgufType>(99); };
  EXPECT_EQ(type_of("t.u8"), GgufType::kU8);
  EXPECT_EQ(f.Find("t.u8")->u, 255u);
  EXPECT_EQ(type_of("t.i8"), GgufType::kI8);
  EXPECT_EQ(f.Find("t.i8")->i, -128);
  EXPECT_EQ(type_of("t.u16"), GgufType::kU16);
  EXPECT_EQ(f.Find("t.u16")->u, 65535u);
  EXPECT_EQ(type_of("t.i16"), GgufType::kI16);
  EXPECT_EQ(f.Find("t.i16")->i, -32768);
  EXPECT_EQ(type_of("t.u32"), GgufType::kU32);
  EXPECT_EQ(f.Find("t.u32")->u, 4294967295u);
  EXPECT_EQ(type_of("t.i32"), GgufType::kI32);
  EXPECT_EQ(f.Find("t.i32")->i, INT32_MIN);
  EXPECT_EQ(type_of("t.u64"), GgufType::kU64);
  EXPECT_EQ(f.Find("t.u64")->u, 18446744073709551615ull);
  EXPECT_EQ(type_of("t.i64"), GgufType::kI64);
  EXPECT_EQ(f.Find("t.i64")->i, INT64_MIN);
  EXPECT_EQ(type_of("t.f32"), GgufType::kF32);
  EXPECT_EQ(f.Find("t.f32")->f, static_cast<double>(0.1f));
  EXPECT_EQ(type_of("t.f64"), GgufType::kF64);
  EXPECT_EQ(f.Find("t.f64")->f, -1.0 / 3.0);
  EXPECT_EQ(type_of("t.bool_true"), GgufType::kBool);

  // Typed getters.
  EXPECT_EQ(Val(f.GetInt("t.u8")), 255);
  EXPECT_EQ(Val(f.GetInt("t.i64")), INT64_MIN);
  EXPECT_EQ(Val(f.GetInt("t.u32")), 4294967295);
  EXPECT_EQ(f.GetInt("t.u64").status().code(), ErrorCode::kCorrupt);  // does not fit int64
  EXPECT_EQ(Val(f.GetFloat("t.f32")), static_cast<double>(0.1f));
  EXPECT_EQ(Val(f.GetFloat("t.i16")), -32768.0);
  EXPECT_TRUE(Val(f.GetBool("t.bool_true")));
  EXPECT_FALSE(Val(f.GetBool("t.bool_false")));
  EXPECT_EQ(Val(f.GetString("t.string")), "h\xC3\xA9llo \xF0\x9F\x98\x80");
  EXPECT_EQ(Val(f.GetString("t.empty")), "");
  EXPECT_EQ(Val(f.GetInt("absent", 42)), 42);
  EXPECT_EQ(Val(f.GetFloat("absent", 0.5)), 0.5);
  EXPECT_TRUE(Val(f.GetBool("absent", true)));
  EXPECT_EQ(f.GetInt("absent").status().code(), ErrorCode::kNotFound);
  auto wrong = f.GetInt("t.string", 1);  // present with a wrong type is an error even with a fallback
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("t.string"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("string"), std::string::npos);
  EXPECT_FALSE(f.GetBool("t.u8").ok());
  EXPECT_FALSE(f.GetString("t.u8").ok());
  EXPECT_FALSE(f.GetFloat("t.string").ok());

  // Arrays.
  auto strings = f.GetArray("t.strings", GgufType::kString);
  ASSERT_TRUE(strings.ok()) << strings.status().message();
  ASSERT_EQ((*strings)->count, 4u);
  ASSERT_EQ((*strings)->strings.size(), 4u);
  EXPECT_EQ((*strings)->strings[0], "a");
  EXPECT_EQ((*strings)->strings[1], "");
  EXPECT_EQ((*strings)->strings[2], "\xE2\x82\xAC");
  EXPECT_EQ((*strings)->strings[3], std::string(300, 'x'));
  EXPECT_FALSE(f.GetArray("t.strings", GgufType::kI32).ok());
  EXPECT_FALSE(f.GetArray("t.u8", GgufType::kU8).ok());
  auto f32s = f.GetArray("t.f32s", GgufType::kF32);
  ASSERT_TRUE(f32s.ok());
  EXPECT_EQ(ArrayValues<float>(**f32s), (std::vector<float>{1.5f, -2.25f, 3e38f}));
  EXPECT_EQ(ArrayValues<int32_t>(*Val(f.GetArray("t.i32s", GgufType::kI32))),
            (std::vector<int32_t>{-1, 0, 2147483647}));
  EXPECT_EQ(ArrayValues<uint8_t>(*Val(f.GetArray("t.u8s", GgufType::kU8))), (std::vector<uint8_t>{0, 1, 255}));
  EXPECT_EQ(ArrayValues<int16_t>(*Val(f.GetArray("t.i16s", GgufType::kI16))), (std::vector<int16_t>{-32768, 7}));
  EXPECT_EQ(ArrayValues<uint64_t>(*Val(f.GetArray("t.u64s", GgufType::kU64))),
            (std::vector<uint64_t>{0, 18446744073709551615ull}));
  const auto f64s = ArrayValues<double>(*Val(f.GetArray("t.f64s", GgufType::kF64)));
  ASSERT_EQ(f64s.size(), 2u);
  EXPECT_EQ(f64s[0], 3.141592653589793);
  EXPECT_TRUE(std::signbit(f64s[1]));
  EXPECT_EQ(ArrayValues<uint8_t>(*Val(f.GetArray("t.bools", GgufType::kBool))), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ((Val(f.GetArray("t.empty_array", GgufType::kI32)))->count, 0u);
  auto nested = f.GetArray("t.nested", GgufType::kArray);
  ASSERT_TRUE(nested.ok()) << nested.status().message();
  ASSERT_EQ((*nested)->items.size(), 2u);
  EXPECT_EQ((*nested)->items[0].elem_type, GgufType::kI32);
  EXPECT_EQ(ArrayValues<int32_t>((*nested)->items[0]), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ((*nested)->items[1].elem_type, GgufType::kString);
  EXPECT_EQ((*nested)->items[1].strings, (std::vector<std::string_view>{"p", "q"}));
}

struct TestTensor {
  std::string name;
  DType type;
  std::vector<int64_t> ne;
  std::vector<uint8_t> data;
};

std::vector<TestTensor> MakeTensors() {
  std::vector<TestTensor> ts = {
      {"f32.vec", DType::kF32, {7}, {}},         {"f16.mat", DType::kF16, {5, 3}, {}},
      {"bf16.3d", DType::kBF16, {4, 2, 2}, {}},  {"q4_0.mat", DType::kQ4_0, {64, 3}, {}},
      {"q8_0.row", DType::kQ8_0, {32}, {}},      {"q6_K.mat", DType::kQ6_K, {256, 2}, {}},
      {"i32.4d", DType::kI32, {3, 1, 1, 2}, {}}, {"f32.empty", DType::kF32, {0, 4}, {}},
      {"f32.last", DType::kF32, {9, 1}, {}},
  };
  uint32_t seed = 1;
  for (auto& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    const auto& info = GetDTypeInfo(t.type);
    t.data = RandomBytes(static_cast<size_t>(n) / info.block_size * info.type_size, seed++);
  }
  return ts;
}

GgufWriter MakeWriter(uint32_t alignment, const std::vector<TestTensor>& ts) {
  GgufWriter w(alignment);
  AddAllMetadata(w);
  for (const auto& t : ts) {
    Status s = w.AddTensor(t.name, t.type, t.ne, t.data.data(), t.data.size());
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return w;
}

void ExpectTensors(const GgufFile& f, const std::vector<TestTensor>& ts, uint64_t alignment) {
  ASSERT_EQ(f.tensors().size(), ts.size());
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  for (size_t k = 0; k < ts.size(); ++k) {
    const GgufTensorInfo& t = f.tensors()[k];
    const TestTensor& want = ts[k];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(t.name, want.name);
    EXPECT_EQ(f.FindTensor(want.name), &t);
    EXPECT_EQ(t.type, want.type);
    ASSERT_EQ(t.n_dims, static_cast<int>(want.ne.size()));
    for (int d = 0; d < 4; ++d) {
      EXPECT_EQ(t.ne[d], d < t.n_dims ? want.ne[static_cast<size_t>(d)] : 1) << "dim " << d;
    }
    EXPECT_EQ(t.offset % alignment, 0u);
    ASSERT_EQ(t.nbytes, want.data.size());
    if (t.nbytes > 0) {
      EXPECT_EQ(std::memcmp(t.data, want.data.data(), t.nbytes), 0);
    }
    const TensorView v = ViewOf(t);
    EXPECT_EQ(v.nbytes, want.data.size());
    EXPECT_EQ(v.data, t.data);
    EXPECT_EQ(v.n_elements(), t.n_elements());
  }
  EXPECT_EQ(f.FindTensor("nope"), nullptr);
  EXPECT_EQ(ShapeString(f.tensors()[1]), "[5, 3]");
}

TEST(GgufRoundTripTest, DefaultAlignmentInMemory) {
  const auto ts = MakeTensors();
  const auto bytes = MakeWriter(kGgufDefaultAlignment, ts).ToBytes();
  auto f = GgufFile::FromBytes(bytes, "mem.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->Find("general.alignment"), nullptr);  // the default is not written, as llama.cpp does
  EXPECT_EQ(f->file_size(), bytes.size());
  ExpectAllMetadata(*f);
  ExpectTensors(*f, ts, 32);
}

TEST(GgufRoundTripTest, CustomAlignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(alignment);
    const auto ts = MakeTensors();
    const auto bytes = MakeWriter(alignment, ts).ToBytes();
    auto f = GgufFile::FromBytes(bytes, "mem.gguf");
    ASSERT_TRUE(f.ok()) << f.status().message();
    ASSERT_NE(f->Find("general.alignment"), nullptr);
    EXPECT_EQ(Val(f->GetInt("general.alignment")), alignment);
    EXPECT_EQ(f->Find("general.alignment")->type, GgufType::kU32);
    ExpectAllMetadata(*f);
    ExpectTensors(*f, ts, alignment);
    // Each tensor starts where the previous one ended, rounded up to the alignment (no gaps, no overlap).
    uint64_t expect_offset = 0;
    for (const auto& t : f->tensors()) {
      EXPECT_EQ(t.offset, expect_offset);
      expect_offset = (t.offset + t.nbytes + alignment - 1) / alignment * alignment;
    }
  }
}

TEST(GgufRoundTripTest, ExplicitAlignmentKeyIsNotDuplicated) {
  GgufWriter w(64);
  w.SetU32("general.alignment", 64);
  w.SetString("general.name", "x");
  const float v[2] = {1, 2};
  ASSERT_TRUE(w.AddTensor("t", DType::kF32, {2}, v, sizeof(v)).ok());
  auto f = GgufFile::FromBytes(w.ToBytes(), "mem.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->kvs().size(), 2u);
  EXPECT_EQ(f->alignment(), 64u);
}

TEST(GgufRoundTripTest, SetReplacesEarlierValue) {
  GgufWriter w;
  w.SetU32("k", 1);
  w.SetString("k", "two");
  auto f = GgufFile::FromBytes(w.ToBytes(), "mem.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->kvs().size(), 1u);
  EXPECT_EQ(Val(f->GetString("k")), "two");
}

TEST(GgufRoundTripTest, OwnedValueFromViewReproducesTheFile) {
  // Copy every kv and tensor of a parsed file into a new writer: the bytes must come out identical.
  const auto ts = MakeTensors();
  const auto bytes = MakeWriter(kGgufDefaultAlignment, ts).ToBytes();
  auto f = GgufFile::FromBytes(bytes, "mem.gguf");
  ASSERT_TRUE(f.ok());
  GgufWriter copy;
  for (const auto& kv : f->kvs()) copy.Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  for (const auto& t : f->tensors()) {
    ASSERT_TRUE(
        copy.AddTensor(std::string(t.name), t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes)
            .ok());
  }
  EXPECT_EQ(copy.ToBytes(), bytes);
}

TEST(GgufRoundTripTest, AddTensorRejectsBadShapes) {
  GgufWriter w;
  std::vector<uint8_t> buf(1024);
  EXPECT_EQ(w.AddTensor("a", DType::kQ4_0, {33}, buf.data(), 18).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("b", DType::kF32, {}, buf.data(), 0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("c", DType::kF32, {1, 1, 1, 1, 1}, buf.data(), 4).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("d", DType::kF32, {-1}, buf.data(), 0).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("e", DType::kF32, {4}, buf.data(), 15).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(w.AddTensor("f", DType::kF32, {4}, buf.data(), 16).ok());
  EXPECT_EQ(w.AddTensor("f", DType::kF32, {4}, buf.data(), 16).code(), ErrorCode::kInvalidArgument);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(GgufWriteFileTest, WritesTheSameBytesAndLeavesNoTempFile) {
  TempDir dir;
  const auto ts = MakeTensors();
  const GgufWriter w = MakeWriter(64, ts);
  const std::string path = dir.file("model.gguf");
  ASSERT_TRUE(w.WriteFile(path).ok());
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"model.gguf"});
  const auto mem = w.ToBytes();
  EXPECT_EQ(ReadAll(path), std::string(mem.begin(), mem.end()));
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->path(), path);
  ExpectAllMetadata(*f);
  ExpectTensors(*f, ts, 64);
  // Overwriting an existing file works and still leaves a single file.
  GgufWriter small;
  small.SetString("general.name", "small");
  ASSERT_TRUE(small.WriteFile(path).ok());
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"model.gguf"});
  EXPECT_EQ(Val(GgufFile::Open(path)->GetString("general.name")), "small");
}

TEST(GgufWriteFileTest, MissingDirectoryFailsWithoutCreatingAnything) {
  TempDir dir;
  GgufWriter w;
  w.SetU32("a", 1);
  Status s = w.WriteFile(dir.file("missing/out.gguf"));
  EXPECT_EQ(s.code(), ErrorCode::kIo);
  EXPECT_NE(s.message().find("missing/out.gguf"), std::string::npos) << s.message();
  EXPECT_TRUE(dir.Entries().empty());
}

TEST(GgufWriteFileTest, FailedWriteDoesNotClobberTarget) {
  // The tests may run as root, which ignores directory permissions, so the failure comes from a file size
  // limit: writes past it fail with EFBIG (SIGXFSZ ignored).
  TempDir dir;
  const std::string path = dir.file("keep.gguf");
  {
    std::ofstream out(path, std::ios::binary);
    out << "previous contents";
  }
  GgufWriter w;
  std::vector<uint8_t> big(1 << 20, 7);
  ASSERT_TRUE(w.AddTensor("big", DType::kI8, {static_cast<int64_t>(big.size())}, big.data(), big.size()).ok());
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit lim = old;
  lim.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Status s = w.WriteFile(path);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(s.code(), ErrorCode::kIo) << s.message();
  EXPECT_EQ(ReadAll(path), "previous contents");
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"keep.gguf"});
}

TEST(GgufWriteFileTest, TargetThatIsADirectoryIsLeftAlone) {
  TempDir dir;
  const std::string path = dir.file("occupied.gguf");
  std::filesystem::create_directory(path);
  {
    std::ofstream out(path + "/inside", std::ios::binary);
    out << "x";
  }
  GgufWriter w;
  w.SetU32("a", 1);
  EXPECT_EQ(w.WriteFile(path).code(), ErrorCode::kIo);
  EXPECT_EQ(dir.Entries(), std::vector<std::string>{"occupied.gguf"});
  EXPECT_EQ(ReadAll(path + "/inside"), "x");
}

}  // namespace
}  // namespace pocketlm
