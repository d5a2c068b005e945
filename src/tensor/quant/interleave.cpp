#include "tensor/quant/interleave.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/quant/blocks.h"

namespace pocketlm::quant {
namespace {

// Every type is an f16 d, (q5_0) 4 bytes of 5th bits, then code bytes.
struct Layout {
  size_t block;     // GGUF block bytes
  size_t qs;        // offset of the code bytes in a GGUF block
  size_t slots_at;  // offset of slot 0 in a unit's block
  int slots;        // code bytes / 4
  uint8_t bias;     // xor applied to code bytes in the unit
  bool qh;          // q5_0's 5th bits (hmask)
};

Layout LayoutOf(DType t) {
  static_assert(offsetof(BlockQ4_0, qs) == 2 && offsetof(BlockQ8_0, qs) == 2, "d first, then the codes");
  static_assert(offsetof(BlockQ5_0, qh) == 2 && offsetof(BlockQ5_0, qs) == 6, "d, qh, then the codes");
  if (t == DType::kQ8_0) return {sizeof(BlockQ8_0), 2, 32, 8, 0x80, false};
  if (t == DType::kQ5_0) return {sizeof(BlockQ5_0), 6, 96, 4, 0, true};
  return {sizeof(BlockQ4_0), 2, 32, 4, 0, false};
}

constexpr size_t kHmaskAt = 2 * kInterleaveRows;

void CopyCodes(uint8_t* dst, const uint8_t* src, uint8_t bias) {
  uint32_t v;  // 4 bytes at once (byte by byte, q5_0 / q4_0 / q8_0 units were most of a model's load time)
  std::memcpy(&v, src, 4);
  v ^= 0x01010101u * bias;
  std::memcpy(dst, &v, 4);
}

uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Bits 4i..4i+3 of hmask[h][k] (little-endian 64-bit words) <-> bits 16h + 4k.. of row i's qh: a nibble, the low
// (i even) or high one of byte i / 2 of word 4h + k.
size_t HmaskByte(int h, int k, int i) {
  return static_cast<size_t>(8 * (4 * h + k) + i / 2);
}

}  // namespace

// q6_K, per super-block of a unit: d[16] f16, sc[group][row] int8, then the ql and qh bytes as 4-byte slots.
constexpr size_t kQ6Scales = 32, kQ6Ql = kQ6Scales + 256, kQ6Qh = kQ6Ql + 32 * 64;
static_assert(kQ6Qh + 16 * 64 == kInterleaveRows * sizeof(BlockQ6_K), "same size as 16 blocks");

void InterleaveQ6_K(const uint8_t* rows, size_t row_bytes, uint8_t* unit) {
  const size_t nb = row_bytes / sizeof(BlockQ6_K);
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* dst = unit + b * kInterleaveRows * sizeof(BlockQ6_K);
    for (int i = 0; i < kInterleaveRows; ++i) {
      const uint8_t* blk = rows + static_cast<size_t>(i) * row_bytes + b * sizeof(BlockQ6_K);
      std::memcpy(dst + 2 * i, blk + offsetof(BlockQ6_K, d), 2);
      for (int g = 0; g < 16; ++g) dst[kQ6Scales + 16 * g + i] = blk[offsetof(BlockQ6_K, scales) + g];
      for (int s = 0; s < 32; ++s) std::memcpy(dst + kQ6Ql + 64 * s + 4 * i, blk + offsetof(BlockQ6_K, ql) + 4 * s, 4);
      for (int s = 0; s < 16; ++s) std::memcpy(dst + kQ6Qh + 64 * s + 4 * i, blk + offsetof(BlockQ6_K, qh) + 4 * s, 4);
    }
  }
}

void DeinterleaveQ6_KRow(const uint8_t* unit, size_t row_bytes, int i, uint8_t* row) {
  const size_t nb = row_bytes / sizeof(BlockQ6_K);
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* src = unit + b * kInterleaveRows * sizeof(BlockQ6_K);
    uint8_t* blk = row + b * sizeof(BlockQ6_K);
    std::memcpy(blk + offsetof(BlockQ6_K, d), src + 2 * i, 2);
    for (int g = 0; g < 16; ++g) blk[offsetof(BlockQ6_K, scales) + g] = src[kQ6Scales + 16 * g + i];
    for (int s = 0; s < 32; ++s) std::memcpy(blk + offsetof(BlockQ6_K, ql) + 4 * s, src + kQ6Ql + 64 * s + 4 * i, 4);
    for (int s = 0; s < 16; ++s) std::memcpy(blk + offsetof(BlockQ6_K, qh) + 4 * s, src + kQ6Qh + 64 * s + 4 * i, 4);
  }
}

// q4_K, per super-block of a unit: d[16], dmin[16] f16, the 12 packed scale bytes and the 128 qs bytes as slots.
constexpr size_t kQ4KScales = 64, kQ4KQs = kQ4KScales + 3 * 64;
static_assert(kQ4KQs + 32 * 64 == kInterleaveRows * sizeof(BlockQ4_K), "same size as 16 blocks");

void InterleaveQ4_K(const uint8_t* rows, size_t row_bytes, uint8_t* unit) {
  const size_t nb = row_bytes / sizeof(BlockQ4_K);
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* dst = unit + b * kInterleaveRows * sizeof(BlockQ4_K);
    for (int i = 0; i < kInterleaveRows; ++i) {
      const uint8_t* blk = rows + static_cast<size_t>(i) * row_bytes + b * sizeof(BlockQ4_K);
      std::memcpy(dst + 2 * i, blk + offsetof(BlockQ4_K, d), 2);
      std::memcpy(dst + 32 + 2 * i, blk + offsetof(BlockQ4_K, dmin), 2);
      for (int s = 0; s < 3; ++s) {
        std::memcpy(dst + kQ4KScales + 64 * s + 4 * i, blk + offsetof(BlockQ4_K, scales) + 4 * s, 4);
      }
      for (int s = 0; s < 32; ++s) std::memcpy(dst + kQ4KQs + 64 * s + 4 * i, blk + offsetof(BlockQ4_K, qs) + 4 * s, 4);
    }
  }
}

void DeinterleaveQ4_KRow(const uint8_t* unit, size_t row_bytes, int i, uint8_t* row) {
  const size_t nb = row_bytes / sizeof(BlockQ4_K);
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* src = unit + b * kInterleaveRows * sizeof(BlockQ4_K);
    uint8_t* blk = row + b * sizeof(BlockQ4_K);
    std::memcpy(blk + offsetof(BlockQ4_K, d), src + 2 * i, 2);
    std::memcpy(blk + offsetof(BlockQ4_K, dmin), src + 32 + 2 * i, 2);
    for (int s = 0; s < 3; ++s) {
      std::memcpy(blk + offsetof(BlockQ4_K, scales) + 4 * s, src + kQ4KScales + 64 * s + 4 * i, 4);
    }
    for (int s = 0; s < 32; ++s) std::memcpy(blk + offsetof(BlockQ4_K, qs) + 4 * s, src + kQ4KQs + 64 * s + 4 * i, 4);
  }
}

bool HasInterleavedLayout(DType t) {
  return GetDTypeInfo(t).Has(kCapInterleaved);
}

void InterleaveUnit(DType t, const uint8_t* rows, size_t row_bytes, uint8_t* unit) {
  if (t == DType::kQ6_K) return InterleaveQ6_K(rows, row_bytes, unit);
  if (t == DType::kQ4_K) return InterleaveQ4_K(rows, row_bytes, unit);
  const Layout L = LayoutOf(t);
  const size_t nb = row_bytes / L.block;
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* dst = unit + b * kInterleaveRows * L.block;
    if (L.qh) std::memset(dst + kHmaskAt, 0, 64);
    for (int i = 0; i < kInterleaveRows; ++i) {
      const uint8_t* blk = rows + static_cast<size_t>(i) * row_bytes + b * L.block;
      std::memcpy(dst + 2 * i, blk, 2);
      for (int k = 0; k < L.slots; ++k) CopyCodes(dst + L.slots_at + 64 * k + 4 * i, blk + L.qs + 4 * k, L.bias);
      if (!L.qh) continue;
      const uint32_t qh = Load32(blk + 2);
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          const uint32_t nibble = (qh >> (16 * h + 4 * k)) & 0xFu;
          dst[kHmaskAt + HmaskByte(h, k, i)] |= static_cast<uint8_t>(nibble << (4 * (i % 2)));
        }
      }
    }
  }
}

void DeinterleaveRow(DType t, const uint8_t* unit, size_t row_bytes, int i, uint8_t* row) {
  if (t == DType::kQ6_K) return DeinterleaveQ6_KRow(unit, row_bytes, i, row);
  if (t == DType::kQ4_K) return DeinterleaveQ4_KRow(unit, row_bytes, i, row);
  const Layout L = LayoutOf(t);
  const size_t nb = row_bytes / L.block;
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* src = unit + b * kInterleaveRows * L.block;
    uint8_t* blk = row + b * L.block;
    std::memcpy(blk, src + 2 * i, 2);
    for (int k = 0; k < L.slots; ++k) CopyCodes(blk + L.qs + 4 * k, src + L.slots_at + 64 * k + 4 * i, L.bias);
    if (!L.qh) continue;
    uint32_t qh = 0;
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        const uint32_t nibble = (src[kHmaskAt + HmaskByte(h, k, i)] >> (4 * (i % 2))) & 0xFu;
        qh |= nibble << (16 * h + 4 * k);
      }
    }
    for (int j = 0; j < 4; ++j) blk[2 + j] = static_cast<uint8_t>(qh >> (8 * j));
  }
}

void DeinterleaveUnit(DType t, const uint8_t* unit, size_t row_bytes, uint8_t* rows) {
  for (int i = 0; i < kInterleaveRows; ++i) DeinterleaveRow(t, unit, row_bytes, i, rows + i * row_bytes);
}

void InterleaveRows(DType t, uint8_t* data, size_t row_bytes, int64_t n_out) {
  const size_t unit_bytes = kInterleaveRows * row_bytes;
  std::vector<uint8_t> tmp(unit_bytes);
  for (int64_t u = 0; u < n_out / kInterleaveRows; ++u) {
    uint8_t* p = data + static_cast<size_t>(u) * unit_bytes;
    std::memcpy(tmp.data(), p, unit_bytes);
    InterleaveUnit(t, tmp.data(), row_bytes, p);
  }
}

}  // namespace pocketlm::quant
