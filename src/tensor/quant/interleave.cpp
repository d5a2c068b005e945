#include "tensor/quant/interleave.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "tensor/quant/blocks.h"

namespace pocketlm::quant {
namespace {
constexpr size_t kBlock = sizeof(BlockQ4_0);
constexpr size_t kScalesBytes = 2 * kInterleaveRows;
}  // namespace

void InterleaveQ4_0Unit(const uint8_t* rows, size_t row_bytes, uint8_t* unit) {
  const size_t nb = row_bytes / kBlock;
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* dst = unit + b * kQ4_0x16BlockBytes;
    for (int i = 0; i < kInterleaveRows; ++i) {
      const uint8_t* blk = rows + static_cast<size_t>(i) * row_bytes + b * kBlock;
      std::memcpy(dst + 2 * i, blk + offsetof(BlockQ4_0, d), 2);
      for (int k = 0; k < 4; ++k) {
        std::memcpy(dst + kScalesBytes + 64 * k + 4 * i, blk + offsetof(BlockQ4_0, qs) + 4 * k, 4);
      }
    }
  }
}

void DeinterleaveQ4_0Row(const uint8_t* unit, size_t row_bytes, int i, uint8_t* row) {
  const size_t nb = row_bytes / kBlock;
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* src = unit + b * kQ4_0x16BlockBytes;
    uint8_t* blk = row + b * kBlock;
    std::memcpy(blk + offsetof(BlockQ4_0, d), src + 2 * i, 2);
    for (int k = 0; k < 4; ++k) {
      std::memcpy(blk + offsetof(BlockQ4_0, qs) + 4 * k, src + kScalesBytes + 64 * k + 4 * i, 4);
    }
  }
}

void DeinterleaveQ4_0Unit(const uint8_t* unit, size_t row_bytes, uint8_t* rows) {
  for (int i = 0; i < kInterleaveRows; ++i) DeinterleaveQ4_0Row(unit, row_bytes, i, rows + i * row_bytes);
}

void InterleaveQ4_0Rows(uint8_t* data, size_t row_bytes, int64_t n_out) {
  const size_t unit_bytes = kInterleaveRows * row_bytes;
  std::vector<uint8_t> tmp(unit_bytes);
  for (int64_t u = 0; u < n_out / kInterleaveRows; ++u) {
    uint8_t* p = data + static_cast<size_t>(u) * unit_bytes;
    std::memcpy(tmp.data(), p, unit_bytes);
    InterleaveQ4_0Unit(tmp.data(), row_bytes, p);
  }
}

}  // namespace pocketlm::quant
