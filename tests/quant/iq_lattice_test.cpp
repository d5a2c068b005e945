// The lattice i-quant decoders (tensor/quant/iquants_lattice.cpp) against the layouts blocks.h documents.
//
// (1) Hand-built blocks: grid indices, sign codes, scales and delta signs are chosen here and packed by the rules
//     in blocks.h; the expected floats come from the documented formula. Scales are powers of two and every product
//     is a small integer times a power of two, so the expected values are exact whatever the order of evaluation.
//     Each test decodes two blocks, the second with twice the super-scale, to check the step between blocks. The
//     8th sign of a 7-bit sign code is derived here from the even-parity rule, not read from kIQ2XSSigns.
// (2) Pseudo-random blocks (every byte random, a random finite f16 super-scale) against checksums of the floats
//     ggml's own dequantize_row_* produced for the same bytes (llama.cpp c392e50 compiled as C on x86-64): this
//     pins rounding as well, and covers IQ1_M, IQ2_S and IQ3_S, which have no golden model file.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {
namespace {

// Sign of value j (0..7) of a group coded with 7 bits: bits 0-6 direct, value 7 makes the count of minus signs even.
float Sign7(int code, int j) {
  const bool negative = j < 7 ? ((code >> j) & 1) != 0 : (std::popcount(static_cast<unsigned>(code)) & 1) != 0;
  return negative ? -1.f : 1.f;
}
float Sign8(int bits, int j) {
  return ((bits >> j) & 1) != 0 ? -1.f : 1.f;
}
int Byte(uint64_t v, int j) {
  return static_cast<int>((v >> (8 * j)) & 0xff);
}

// Decodes `blocks` (2 blocks of T) and checks y against expect(value index within the block) for block 0 and
// 2 * expect for block 1 (whose super-scale the caller doubled).
template <DType T, typename Block, typename F>
void ExpectDecodes(const Block (&blocks)[2], F expect) {
  std::vector<float> y(2 * kQK_K);
  DequantizeRow<T>(blocks, y.data(), 2 * kQK_K);
  for (int i = 0; i < kQK_K; ++i) {
    const float e = expect(i);
    ASSERT_EQ(y[i], e) << DTypeName(T) << " value " << i;
    ASSERT_EQ(y[kQK_K + i], 2 * e) << DTypeName(T) << " block 1 value " << i;
  }
}

// Little-endian stores into byte arrays.
void Put32(uint8_t* p, uint32_t v) {
  for (int b = 0; b < 4; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
}

constexpr float kD = 0.5f;  // super-scale of block 0

TEST(quantIQLattice, IQ2_XXSHandBuilt) {
  BlockIQ2_XXS b[2] = {};
  int idx[8][4], code[8][4], s[8];
  for (int ib = 0; ib < 8; ++ib) {
    s[ib] = (2 * ib + 1) & 15;
    uint32_t w0 = 0, w1 = static_cast<uint32_t>(s[ib]) << 28;
    for (int l = 0; l < 4; ++l) {
      idx[ib][l] = (37 * (4 * ib + l) + 11) & 255;
      code[ib][l] = (13 * (4 * ib + l) + 5) & 127;
      w0 |= static_cast<uint32_t>(idx[ib][l]) << (8 * l);
      w1 |= static_cast<uint32_t>(code[ib][l]) << (7 * l);
    }
    uint8_t bytes[8];
    Put32(bytes, w0);
    Put32(bytes + 4, w1);
    std::memcpy(&b[0].qs[4 * ib], bytes, 8);
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ2_XXS>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const double scale = kD * (0.5 + s[ib]) / 4;
    return static_cast<float>(scale * Byte(kIQ2XXSGrid[idx[ib][l]], j) * Sign7(code[ib][l], j));
  });
}

TEST(quantIQLattice, IQ2_XSHandBuilt) {
  BlockIQ2_XS b[2] = {};
  int idx[8][4], code[8][4];
  for (int ib = 0; ib < 8; ++ib) {
    b[0].scales[ib] = static_cast<uint8_t>(((3 * ib + 1) & 15) | ((15 - ib) << 4));
    for (int l = 0; l < 4; ++l) {
      idx[ib][l] = (97 * (4 * ib + l) + 300) % 512;  // both halves of the 512-entry grid
      code[ib][l] = (29 * (4 * ib + l) + 3) & 127;
      b[0].qs[4 * ib + l] = static_cast<uint16_t>(idx[ib][l] | code[ib][l] << 9);
    }
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ2_XS>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const int s = l < 2 ? (3 * ib + 1) & 15 : 15 - ib;
    const double scale = kD * (0.5 + s) / 4;
    return static_cast<float>(scale * Byte(kIQ2XSGrid[idx[ib][l]], j) * Sign7(code[ib][l], j));
  });
}

TEST(quantIQLattice, IQ2_SHandBuilt) {
  BlockIQ2_S b[2] = {};
  int idx[8][4], sign[8][4];
  for (int ib = 0; ib < 8; ++ib) {
    b[0].scales[ib] = static_cast<uint8_t>((ib + 7) % 16 | ((2 * ib) % 16) << 4);
    for (int l = 0; l < 4; ++l) {
      idx[ib][l] = (331 * (4 * ib + l) + 17) % 1024;
      sign[ib][l] = (53 * (4 * ib + l) + 7) & 255;
      b[0].qs[4 * ib + l] = static_cast<uint8_t>(idx[ib][l] & 0xff);
      b[0].qh[ib] = static_cast<uint8_t>(b[0].qh[ib] | (idx[ib][l] >> 8) << (2 * l));
      b[0].qs[32 + 4 * ib + l] = static_cast<uint8_t>(sign[ib][l]);
    }
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ2_S>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const int s = l < 2 ? (ib + 7) % 16 : (2 * ib) % 16;
    const double scale = kD * (0.5 + s) / 4;
    return static_cast<float>(scale * Byte(kIQ2SGrid[idx[ib][l]], j) * Sign8(sign[ib][l], j));
  });
}

TEST(quantIQLattice, IQ3_XXSHandBuilt) {
  BlockIQ3_XXS b[2] = {};
  int half[8][8], code[8][4], s[8];
  for (int ib = 0; ib < 8; ++ib) {
    s[ib] = (5 * ib + 4) & 15;
    uint32_t meta = static_cast<uint32_t>(s[ib]) << 28;
    for (int k = 0; k < 8; ++k) {
      half[ib][k] = (29 * (8 * ib + k) + 3) & 255;
      b[0].qs[8 * ib + k] = static_cast<uint8_t>(half[ib][k]);
    }
    for (int l = 0; l < 4; ++l) {
      code[ib][l] = (41 * (4 * ib + l) + 100) & 127;
      meta |= static_cast<uint32_t>(code[ib][l]) << (7 * l);
    }
    Put32(b[0].qs + 64 + 4 * ib, meta);
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ3_XXS>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const double scale = kD * (0.5 + s[ib]) / 2;
    const int level = Byte(kIQ3XXSGrid[half[ib][2 * l + j / 4]], j % 4);
    return static_cast<float>(scale * level * Sign7(code[ib][l], j));
  });
}

TEST(quantIQLattice, IQ3_SHandBuilt) {
  BlockIQ3_S b[2] = {};
  int half[8][8], sign[8][4], s[8];
  for (int ib = 0; ib < 8; ++ib) {
    s[ib] = (5 * ib + 2) & 15;
    b[0].scales[ib / 2] = static_cast<uint8_t>(b[0].scales[ib / 2] | s[ib] << (4 * (ib % 2)));
    for (int k = 0; k < 8; ++k) {
      half[ib][k] = (211 * (8 * ib + k) + 5) % 512;
      b[0].qs[8 * ib + k] = static_cast<uint8_t>(half[ib][k] & 0xff);
      b[0].qh[ib] = static_cast<uint8_t>(b[0].qh[ib] | (half[ib][k] >> 8) << k);
    }
    for (int l = 0; l < 4; ++l) {
      sign[ib][l] = (71 * (4 * ib + l) + 9) & 255;
      b[0].signs[4 * ib + l] = static_cast<uint8_t>(sign[ib][l]);
    }
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ3_S>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const double scale = kD * (1 + 2 * s[ib]);
    const int level = Byte(kIQ3SGrid[half[ib][2 * l + j / 4]], j % 4);
    return static_cast<float>(scale * level * Sign8(sign[ib][l], j));
  });
}

// IQ1 grid values are bytes 0xff / 0x00 / 0x01 read as signed.
int SignedByte(uint64_t v, int j) {
  return static_cast<int8_t>(static_cast<uint8_t>(v >> (8 * j)));
}

TEST(quantIQLattice, IQ1_SHandBuilt) {
  BlockIQ1_S b[2] = {};
  int idx[8][4];
  for (int ib = 0; ib < 8; ++ib) {
    int qh = (ib % 8) << 12 | (ib % 2) << 15;  // scale code ib, delta negative on odd sub-blocks
    for (int l = 0; l < 4; ++l) {
      idx[ib][l] = (613 * (4 * ib + l) + 99) % 2048;
      b[0].qs[4 * ib + l] = static_cast<uint8_t>(idx[ib][l] & 0xff);
      qh |= (idx[ib][l] >> 8) << (3 * l);
    }
    b[0].qh[ib] = static_cast<uint16_t>(qh);
  }
  b[1] = b[0];
  b[0].d = F32ToF16(kD);
  b[1].d = F32ToF16(2 * kD);
  ExpectDecodes<DType::kIQ1_S>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const double delta = ib % 2 ? -0.125 : 0.125;
    return static_cast<float>(kD * (2 * ib + 1) * (SignedByte(kIQ1SGrid[idx[ib][l]], j) + delta));
  });
}

TEST(quantIQLattice, IQ1_MHandBuilt) {
  // IQ1_M has no d field: the f16 super-scale lives in the top nibbles of the 4 scale words.
  auto build = [](float d, BlockIQ1_M* b, int idx[8][4], bool neg[8][4], int s[8][2]) {
    *b = {};
    const uint16_t h = F32ToF16(d);
    uint16_t w[4] = {};
    for (int k = 0; k < 4; ++k) w[k] = static_cast<uint16_t>(((h >> (4 * k)) & 0xf) << 12);
    for (int ib = 0; ib < 8; ++ib) {
      s[ib][0] = (3 * ib + 1) & 7;
      s[ib][1] = (5 * ib + 2) & 7;
      w[ib / 2] = static_cast<uint16_t>(w[ib / 2] | s[ib][0] << (6 * (ib % 2)) | s[ib][1] << (6 * (ib % 2) + 3));
      for (int l = 0; l < 4; ++l) {
        idx[ib][l] = (389 * (4 * ib + l) + 1000) % 2048;
        neg[ib][l] = (7 * (4 * ib + l)) % 3 == 0;
        b->qs[4 * ib + l] = static_cast<uint8_t>(idx[ib][l] & 0xff);
        const int nibble = (idx[ib][l] >> 8) | (neg[ib][l] ? 8 : 0);
        b->qh[2 * ib + l / 2] = static_cast<uint8_t>(b->qh[2 * ib + l / 2] | nibble << (4 * (l % 2)));
      }
    }
    for (int k = 0; k < 4; ++k) {
      b->scales[2 * k] = static_cast<uint8_t>(w[k] & 0xff);
      b->scales[2 * k + 1] = static_cast<uint8_t>(w[k] >> 8);
    }
  };
  BlockIQ1_M b[2];
  int idx[8][4], s[8][2];
  bool neg[8][4];
  build(kD, &b[0], idx, neg, s);
  build(2 * kD, &b[1], idx, neg, s);
  ExpectDecodes<DType::kIQ1_M>(b, [&](int i) {
    const int ib = i / 32, l = i % 32 / 8, j = i % 8;
    const double delta = neg[ib][l] ? -0.125 : 0.125;
    return static_cast<float>(kD * (2 * s[ib][l / 2] + 1) * (SignedByte(kIQ1SGrid[idx[ib][l]], j) + delta));
  });
}

// ---- pseudo-random blocks against ggml's output ------------------------------------------------------------------

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// n_blocks blocks of block_bytes random bytes, then per block a random finite f16 super-scale (exponent 31 turned
// into 15): at byte d_offset, or for IQ1_M (d_offset < 0) in the top nibbles of the scale words at bytes 48..55.
std::vector<uint8_t> RandomBlocks(int n_blocks, int block_bytes, int d_offset, uint64_t seed) {
  std::vector<uint8_t> b(static_cast<size_t>(n_blocks * block_bytes));
  for (auto& byte : b) byte = static_cast<uint8_t>(SplitMix64(&seed) >> 56);
  for (int i = 0; i < n_blocks; ++i) {
    auto h = static_cast<uint16_t>(SplitMix64(&seed) >> 48);
    if ((h & 0x7c00) == 0x7c00) h ^= 0x4000;
    uint8_t* blk = b.data() + i * block_bytes;
    if (d_offset >= 0) {
      blk[d_offset] = static_cast<uint8_t>(h & 0xff);
      blk[d_offset + 1] = static_cast<uint8_t>(h >> 8);
    } else {
      for (int k = 0; k < 4; ++k) {
        uint8_t& hi = blk[48 + 2 * k + 1];
        hi = static_cast<uint8_t>((hi & 0x0f) | ((h >> (4 * k)) & 0xf) << 4);
      }
    }
  }
  return b;
}

uint64_t Fnv1aBytes(const void* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<const uint8_t*>(p)[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

struct GgmlCase {
  DType type;
  int d_offset;
  uint64_t blocks_fnv;  // the input, to tell a generator slip from a decoder one
  uint64_t floats_fnv;  // ggml's dequantized floats
};

TEST(quantIQLattice, RandomBlocksMatchGgmlBitForBit) {
  const GgmlCase cases[] = {
      {DType::kIQ2_XXS, 0, 0xa39f94cf33a2abfbull, 0xe988abfa19bd20b4ull},
      {DType::kIQ2_XS, 0, 0x2091289b66ad0bc9ull, 0xbde1fc27f0728a4aull},
      {DType::kIQ3_XXS, 0, 0xf13650912bf6051aull, 0xcf2a7283c2ce12eeull},
      {DType::kIQ1_S, 0, 0x89d6df8f0640fed1ull, 0x77ceecb7c845af34ull},
      {DType::kIQ3_S, 0, 0xa8279457f285ddc7ull, 0x4670e1c163534869ull},
      {DType::kIQ2_S, 0, 0x0f62795fd1f3b102ull, 0x7b63dd733b11522eull},
      {DType::kIQ1_M, -1, 0xd5ee50bc9cc1b187ull, 0xcdffe4358251d682ull},
  };
  constexpr int kBlocks = 16;
  for (const GgmlCase& c : cases) {
    const DTypeInfo& info = GetDTypeInfo(c.type);
    const auto blocks =
        RandomBlocks(kBlocks, static_cast<int>(info.type_size), c.d_offset, 0x1234 + static_cast<uint64_t>(c.type));
    ASSERT_EQ(Fnv1aBytes(blocks.data(), blocks.size()), c.blocks_fnv) << info.name;
    std::vector<float> y(kBlocks * kQK_K);
    ASSERT_TRUE(DequantizeRow(c.type, blocks.data(), y.data(), static_cast<int64_t>(y.size())).ok()) << info.name;
    EXPECT_EQ(Fnv1aBytes(y.data(), y.size() * sizeof(float)), c.floats_fnv) << info.name;
  }
}

// Through the checked entry points: decoding checks the row length; encoding without an importance matrix works for
// IQ3_XXS / IQ3_S and is refused for the types llama-quantize refuses it for, with weights it works for all.
TEST(quantIQLattice, CheckedEntryPoints) {
  for (DType t :
       {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS, DType::kIQ3_S, DType::kIQ1_S, DType::kIQ1_M}) {
    std::vector<uint8_t> blocks(GetDTypeInfo(t).type_size, 0);
    std::vector<float> y(kQK_K, 1.f);
    EXPECT_TRUE(DequantizeRow(t, blocks.data(), y.data(), kQK_K).ok()) << DTypeName(t);
    EXPECT_EQ(DequantizeRow(t, blocks.data(), y.data(), 32).code(), ErrorCode::kInvalidArgument) << DTypeName(t);
    for (int i = 0; i < kQK_K; ++i) y[static_cast<size_t>(i)] = static_cast<float>(i % 7) - 3.f;
    const bool needs = t != DType::kIQ3_XXS && t != DType::kIQ3_S;
    EXPECT_EQ(NeedsImportanceMatrix(t), needs) << DTypeName(t);
    const Status s = QuantizeRow(t, y.data(), blocks.data(), kQK_K);
    if (needs) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << DTypeName(t);
      EXPECT_NE(s.message().find("needs an importance matrix"), std::string::npos) << s.message();
    } else {
      EXPECT_TRUE(s.ok()) << s.message();
    }
    const std::vector<float> w(kQK_K, 1.f);
    EXPECT_TRUE(QuantizeRow(t, y.data(), blocks.data(), kQK_K, w.data()).ok()) << DTypeName(t);
    EXPECT_EQ(QuantizeRow(t, y.data(), blocks.data(), 32, w.data()).code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace pocketlm::quant
