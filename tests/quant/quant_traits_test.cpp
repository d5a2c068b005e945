// The converter table covers dtype.cpp's types, the registry's flags are consistent, and hand-built blocks decode to
// the values the layout comments in blocks.h promise (independent of the golden files, so the formats the golden set
// lacks -- q4_1, q5_0, q5_1, iq4_xs -- are pinned down too).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {
namespace {

TEST(quantTraits, OneConverterEntryPerDefinedType) {
  int count = 0;
  const QuantTraits* table = QuantTraitsTable(&count);
  int n_defined = 0;
  for (uint32_t raw = 0; raw < 64; ++raw) {
    const auto info = LookupDType(raw);
    if (!info) continue;
    ++n_defined;
    const QuantTraits& tr = GetQuantTraits(info->type);
    EXPECT_EQ(tr.type, info->type) << raw;
    // Both converters, a dequantizer alone (read-only types), or neither; a quantizer alone would write files
    // pocketlm itself cannot read back.
    EXPECT_TRUE(tr.quantize_row == nullptr || tr.dequantize_row != nullptr) << info->name;
  }
  EXPECT_EQ(count, n_defined);
  for (int i = 0; i < count; ++i) EXPECT_TRUE(LookupDType(static_cast<uint32_t>(table[i].type))) << i;
}

// The registry's capability flags promise only what the code behind them needs: kernels for a type read it, the
// interleaved layout and ARM kernels exist only beside the portable integer kernels, and the activations a dot
// product wants can be written.
TEST(quantTraits, CapabilitiesAreConsistent) {
  for (uint32_t raw = 0; raw < 64; ++raw) {
    const auto info = LookupDType(raw);
    if (!info) continue;
    const bool converts = GetQuantTraits(info->type).dequantize_row != nullptr;
    if (info->Has(kCapQuantDot)) {
      EXPECT_TRUE(converts) << info->name;
      EXPECT_TRUE(info->quantized) << info->name;
      EXPECT_NE(GetQuantTraits(info->vec_dot_type).quantize_row, nullptr) << info->name;
    }
    const bool interleaved_or_arm = info->Has(kCapInterleaved) || info->Has(kCapArmDot);
    EXPECT_TRUE(!interleaved_or_arm || info->Has(kCapQuantDot)) << info->name;
    EXPECT_TRUE(!info->Has(kCapX16Kernels) || info->Has(kCapInterleaved)) << info->name;
    EXPECT_TRUE(info->quantized || info->vec_dot_type == info->type) << info->name;
  }
}

TEST(quantTraits, BlockStructSizesMatchTable) {
  EXPECT_EQ(sizeof(BlockQ4_0), GetDTypeInfo(DType::kQ4_0).type_size);
  EXPECT_EQ(sizeof(BlockQ4_1), GetDTypeInfo(DType::kQ4_1).type_size);
  EXPECT_EQ(sizeof(BlockQ5_0), GetDTypeInfo(DType::kQ5_0).type_size);
  EXPECT_EQ(sizeof(BlockQ5_1), GetDTypeInfo(DType::kQ5_1).type_size);
  EXPECT_EQ(sizeof(BlockQ8_0), GetDTypeInfo(DType::kQ8_0).type_size);
  EXPECT_EQ(sizeof(BlockQ8_1), GetDTypeInfo(DType::kQ8_1).type_size);
  EXPECT_EQ(sizeof(BlockQ2_K), GetDTypeInfo(DType::kQ2_K).type_size);
  EXPECT_EQ(sizeof(BlockQ3_K), GetDTypeInfo(DType::kQ3_K).type_size);
  EXPECT_EQ(sizeof(BlockQ4_K), GetDTypeInfo(DType::kQ4_K).type_size);
  EXPECT_EQ(sizeof(BlockQ5_K), GetDTypeInfo(DType::kQ5_K).type_size);
  EXPECT_EQ(sizeof(BlockQ6_K), GetDTypeInfo(DType::kQ6_K).type_size);
  EXPECT_EQ(sizeof(BlockQ8_K), GetDTypeInfo(DType::kQ8_K).type_size);
  EXPECT_EQ(sizeof(BlockIQ4_NL), GetDTypeInfo(DType::kIQ4_NL).type_size);
  EXPECT_EQ(sizeof(BlockIQ4_XS), GetDTypeInfo(DType::kIQ4_XS).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_XXS), GetDTypeInfo(DType::kIQ2_XXS).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_XS), GetDTypeInfo(DType::kIQ2_XS).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_S), GetDTypeInfo(DType::kIQ2_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ3_XXS), GetDTypeInfo(DType::kIQ3_XXS).type_size);
  EXPECT_EQ(sizeof(BlockIQ3_S), GetDTypeInfo(DType::kIQ3_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ1_S), GetDTypeInfo(DType::kIQ1_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ1_M), GetDTypeInfo(DType::kIQ1_M).type_size);
}

TEST(quantTraits, ActivationTypes) {
  EXPECT_EQ(GetDTypeInfo(DType::kQ4_0).vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(GetDTypeInfo(DType::kQ4_1).vec_dot_type, DType::kQ8_1);
  EXPECT_EQ(GetDTypeInfo(DType::kQ8_0).vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(GetDTypeInfo(DType::kIQ4_NL).vec_dot_type, DType::kQ8_0);
  EXPECT_EQ(GetDTypeInfo(DType::kIQ4_XS).vec_dot_type, DType::kQ8_K);
  for (DType t : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_EQ(GetDTypeInfo(t).vec_dot_type, DType::kQ8_K) << DTypeName(t);
  }
}

TEST(quantTraits, CheckedEntryPointsRejectBadInput) {
  float row[64] = {};
  uint8_t blocks[64 * 4] = {};
  EXPECT_EQ(DequantizeRow(DType::kQ4_0, blocks, row, 33).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(QuantizeRow(DType::kQ4_K, row, blocks, 64).code(), ErrorCode::kInvalidArgument);
  const Status s = DequantizeRow(DType::kTQ1_0, blocks, row, 256);
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported);
  EXPECT_NE(s.message().find("cannot read tensors of type tq1_0"), std::string::npos) << s.message();
  EXPECT_TRUE(DequantizeRow(DType::kQ4_0, blocks, row, 64).ok());
}

// ---- hand-built blocks ------------------------------------------------------------------------------------------

TEST(quantLayout, Q4_1NibbleOrderAndMin) {
  BlockQ4_1 b{};
  b.d = F32ToF16(0.5f);
  b.m = F32ToF16(-2.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  DequantizeRow<DType::kQ4_1>(&b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j) - 2.0f) << j;
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(15 - j) - 2.0f) << j;
  }
}

TEST(quantLayout, Q5_0HighBitsFromQh) {
  BlockQ5_0 b{};
  b.d = F32ToF16(1.0f);
  // Value 3 and value 16 + 5 get their 5th bit: qh bit 3 and bit 21 (little-endian u32).
  const uint32_t qh = (1u << 3) | (1u << 21);
  std::memcpy(b.qh, &qh, 4);
  std::memset(b.qs, 0x77, 16);  // low nibble 7 everywhere
  float y[32];
  DequantizeRow<DType::kQ5_0>(&b, y, 32);
  for (int j = 0; j < 32; ++j) {
    const bool high = j == 3 || j == 21;
    EXPECT_EQ(y[j], static_cast<float>((high ? 23 : 7) - 16)) << j;
  }
}

TEST(quantLayout, Q5_1HighBitsAndMin) {
  BlockQ5_1 b{};
  b.d = F32ToF16(0.25f);
  b.m = F32ToF16(1.0f);
  const uint32_t qh = 0x80000001u;  // values 0 and 31
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  DequantizeRow<DType::kQ5_1>(&b, y, 32);
  EXPECT_EQ(y[0], 0.25f * 16 + 1.0f);
  EXPECT_EQ(y[31], 0.25f * 16 + 1.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[16], 1.0f);
}

TEST(quantLayout, IQ4_XSScalesAndTable) {
  BlockIQ4_XS b{};
  b.d = F32ToF16(0.5f);
  // Sub-block ib gets ls = 32 + ib + 1 (low nibble in scales_l, top bits in scales_h); sub-block 7 gets ls = 0.
  b.scales_h = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ib == 7 ? 0 : 33 + ib;
    b.scales_l[ib / 2] = static_cast<uint8_t>(b.scales_l[ib / 2] | ((ls & 0xF) << 4 * (ib % 2)));
    b.scales_h = static_cast<uint16_t>(b.scales_h | ((ls >> 4) << 2 * ib));
  }
  for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>((i % 16) | (15 - i % 16) << 4);
  std::vector<float> y(256);
  DequantizeRow<DType::kIQ4_XS>(&b, y.data(), 256);
  for (int ib = 0; ib < 8; ++ib) {
    const float dl = 0.5f * static_cast<float>((ib == 7 ? 0 : 33 + ib) - 32);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * ib + j], dl * kIQ4NLValues[j]) << ib << " " << j;
      EXPECT_EQ(y[32 * ib + 16 + j], dl * kIQ4NLValues[15 - j]) << ib << " " << j;
    }
  }
}

TEST(quantLayout, Q4_KPackedScalesAndMins) {
  // Sub-block j gets scale j + 1 and min 60 - j; values all q = 2 -> x = d*sc*2 - dmin*m.
  const float ref_d = 0.125f;
  const float ref_dmin = 0.0625f;
  float x[256];
  BlockQ4_K b{};
  b.d = F32ToF16(ref_d);
  b.dmin = F32ToF16(ref_dmin);
  for (int j = 0; j < 8; ++j) {
    const int ls = j + 1 + (j >= 4 ? 32 : 0);  // exercise the top bits for j >= 4
    const int lm = 60 - j;
    if (j < 4) {
      b.scales[j] = static_cast<uint8_t>(ls);
      b.scales[j + 4] = static_cast<uint8_t>(lm);
    } else {
      b.scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      b.scales[j - 4] = static_cast<uint8_t>(b.scales[j - 4] | ((ls >> 4) << 6));
      b.scales[j] = static_cast<uint8_t>(b.scales[j] | ((lm >> 4) << 6));
    }
  }
  std::memset(b.qs, 0x22, sizeof(b.qs));
  DequantizeRow<DType::kQ4_K>(&b, x, 256);
  for (int j = 0; j < 8; ++j) {
    const int ls = j + 1 + (j >= 4 ? 32 : 0);
    const float expect = ref_d * static_cast<float>(ls) * 2 - ref_dmin * static_cast<float>(60 - j);
    for (int l = 0; l < 32; ++l) EXPECT_EQ(x[32 * j + l], expect) << j;
  }
}

}  // namespace
}  // namespace pocketlm::quant
