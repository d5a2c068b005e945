#include "tensor/quant/interleave.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "tensor/quant/blocks.h"

namespace pocketlm::quant {
namespace {

// Both types are an f16 d followed by code bytes.
struct Layout {
  size_t block;  // GGUF block bytes
  int slots;     // code bytes / 4
  uint8_t bias;  // xor applied to code bytes in the unit
};

Layout LayoutOf(DType t) {
  static_assert(offsetof(BlockQ4_0, qs) == 2 && offsetof(BlockQ8_0, qs) == 2, "d first, then the codes");
  if (t == DType::kQ8_0) return {sizeof(BlockQ8_0), 8, 0x80};
  return {sizeof(BlockQ4_0), 4, 0};
}

constexpr size_t kScalesBytes = 2 * kInterleaveRows;

void CopyCodes(uint8_t* dst, const uint8_t* src, uint8_t bias) {
  for (int j = 0; j < 4; ++j) dst[j] = src[j] ^ bias;
}

}  // namespace

bool HasInterleavedLayout(DType t) {
  return t == DType::kQ4_0 || t == DType::kQ8_0;
}

size_t InterleavedBlockBytes(DType t) {
  return kInterleaveRows * LayoutOf(t).block;
}

void InterleaveUnit(DType t, const uint8_t* rows, size_t row_bytes, uint8_t* unit) {
  const Layout L = LayoutOf(t);
  const size_t nb = row_bytes / L.block;
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* dst = unit + b * kInterleaveRows * L.block;
    for (int i = 0; i < kInterleaveRows; ++i) {
      const uint8_t* blk = rows + static_cast<size_t>(i) * row_bytes + b * L.block;
      std::memcpy(dst + 2 * i, blk, 2);
      for (int k = 0; k < L.slots; ++k) CopyCodes(dst + kScalesBytes + 64 * k + 4 * i, blk + 2 + 4 * k, L.bias);
    }
  }
}

void DeinterleaveRow(DType t, const uint8_t* unit, size_t row_bytes, int i, uint8_t* row) {
  const Layout L = LayoutOf(t);
  const size_t nb = row_bytes / L.block;
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* src = unit + b * kInterleaveRows * L.block;
    uint8_t* blk = row + b * L.block;
    std::memcpy(blk, src + 2 * i, 2);
    for (int k = 0; k < L.slots; ++k) CopyCodes(blk + 2 + 4 * k, src + kScalesBytes + 64 * k + 4 * i, L.bias);
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
