// The GGUF type table against the block sizes and byte counts of the spec (ggml-common.h, QK_K = 256).
#include "tensor/dtype.h"

#include <gtest/gtest.h>

namespace pocketlm {
namespace {

TEST(DTypeTest, GeometryMatchesGgufSpec) {
  struct Want {
    uint32_t raw;
    const char* name;
    uint32_t block, bytes;
  };
  const Want wants[] = {
      {0, "f32", 1, 4},       {1, "f16", 1, 2},       {2, "q4_0", 32, 18},    {3, "q4_1", 32, 20},
      {6, "q5_0", 32, 22},    {7, "q5_1", 32, 24},    {8, "q8_0", 32, 34},    {9, "q8_1", 32, 36},
      {10, "q2_K", 256, 84},  {11, "q3_K", 256, 110}, {12, "q4_K", 256, 144}, {13, "q5_K", 256, 176},
      {14, "q6_K", 256, 210}, {15, "q8_K", 256, 292}, {20, "iq4_nl", 32, 18}, {23, "iq4_xs", 256, 136},
      {24, "i8", 1, 1},       {25, "i16", 1, 2},      {26, "i32", 1, 4},      {27, "i64", 1, 8},
      {28, "f64", 1, 8},      {30, "bf16", 1, 2},
  };
  for (const auto& w : wants) {
    auto info = LookupDType(w.raw);
    ASSERT_TRUE(info.has_value()) << w.name;
    EXPECT_EQ(static_cast<uint32_t>(info->type), w.raw) << w.name;
    EXPECT_EQ(info->name, w.name);
    EXPECT_EQ(info->block_size, w.block) << w.name;
    EXPECT_EQ(info->type_size, w.bytes) << w.name;
    EXPECT_EQ(info->quantized, w.block > 1) << w.name;
    EXPECT_EQ(DTypeName(info->type), w.name);
    EXPECT_EQ(GetDTypeInfo(info->type).type_size, w.bytes);
  }
}

TEST(DTypeTest, UndefinedNumbersAreRejected) {
  // 4 and 5 were q4_2 / q4_3 (removed), 31..33 are unassigned or retired in the spec.
  for (uint32_t raw : {4u, 5u, 31u, 32u, 33u, 36u, 39u, 1000u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(LookupDType(raw).has_value()) << raw;
  }
}

TEST(DTypeTest, RowBytes) {
  EXPECT_EQ(RowBytes(DType::kQ4_0, 64), std::optional<uint64_t>(36));
  EXPECT_EQ(RowBytes(DType::kQ4_0, 33), std::nullopt);
  EXPECT_EQ(RowBytes(DType::kQ6_K, 512), std::optional<uint64_t>(420));
  EXPECT_EQ(RowBytes(DType::kQ6_K, 128), std::nullopt);
  EXPECT_EQ(RowBytes(DType::kF32, 7), std::optional<uint64_t>(28));
  EXPECT_EQ(RowBytes(DType::kBF16, 3), std::optional<uint64_t>(6));
  EXPECT_EQ(RowBytes(DType::kF16, 0), std::optional<uint64_t>(0));
}

}  // namespace
}  // namespace pocketlm
