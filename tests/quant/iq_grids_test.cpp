// The lattice i-quant codebooks of tensor/quant/iq_grids.h are pinned three ways: an FNV-1a checksum of every table
// (computed from ggml/src/ggml-common.h at llama.cpp c392e50, compiled as C, so a mistyped entry anywhere fails), a
// few literal entries, and the structure the format relies on (the level set of each grid, distinct entries, and
// the even-parity rule of the sign table).
#include "tensor/quant/iq_grids.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <set>

namespace pocketlm::quant {
namespace {

// FNV-1a 64 over the little-endian bytes of each value (width bytes each).
template <typename T>
uint64_t Fnv1a(const T* v, int n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < n; ++i) {
    for (int b = 0; b < static_cast<int>(sizeof(T)); ++b) {
      h ^= static_cast<uint8_t>(static_cast<uint64_t>(v[i]) >> (8 * b));
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

TEST(quantIQGrids, ChecksumsMatchGgml) {
  EXPECT_EQ(Fnv1a(kIQ2XXSGrid, 256), 0xbb4ee025b5ac6e8eull);
  EXPECT_EQ(Fnv1a(kIQ2XSGrid, 512), 0xc9b1ee61e79909bdull);
  EXPECT_EQ(Fnv1a(kIQ2SGrid, 1024), 0x123edd38a3b62b90ull);
  EXPECT_EQ(Fnv1a(kIQ3XXSGrid, 256), 0xdfa5dc83d6a155d5ull);
  EXPECT_EQ(Fnv1a(kIQ3SGrid, 512), 0xfa37020c25b44829ull);
  EXPECT_EQ(Fnv1a(kIQ1SGrid, 2048), 0x6703ed863501ae2eull);
  EXPECT_EQ(Fnv1a(kIQ2XSSigns, 128), 0xf19ba8f8c3292ba5ull);
}

TEST(quantIQGrids, LiteralEntries) {
  EXPECT_EQ(kIQ2XXSGrid[0], 0x0808080808080808ull);
  EXPECT_EQ(kIQ2XXSGrid[128], 0x082b2b0808082b08ull);
  EXPECT_EQ(kIQ2XXSGrid[255], 0x2b2b2b1908081908ull);
  EXPECT_EQ(kIQ2XSGrid[256], 0x190808080808192bull);
  EXPECT_EQ(kIQ2XSGrid[511], 0x2b2b2b2b2b2b2b2bull);
  EXPECT_EQ(kIQ2SGrid[512], 0x19080819082b1919ull);
  EXPECT_EQ(kIQ2SGrid[1023], 0x2b2b2b2b2b2b2b2bull);
  EXPECT_EQ(kIQ3XXSGrid[0], 0x04040404u);
  EXPECT_EQ(kIQ3XXSGrid[128], 0x141c3e04u);
  EXPECT_EQ(kIQ3XXSGrid[255], 0x3e341c04u);
  EXPECT_EQ(kIQ3SGrid[256], 0x05090507u);
  EXPECT_EQ(kIQ3SGrid[511], 0x0f0f0101u);
  EXPECT_EQ(kIQ1SGrid[0], 0xffffffffffffffffull);
  EXPECT_EQ(kIQ1SGrid[1024], 0x0000000000ff0100ull);
  EXPECT_EQ(kIQ1SGrid[2047], 0x0101010101010101ull);
}

// Every byte of every entry is one of the grid's levels, and no two entries are equal (a duplicate would waste a
// code and hints at a transcription slip).
template <typename T>
void ExpectLevels(const T* grid, int n, int bytes_per_entry, const std::set<int>& levels, const char* name) {
  std::set<uint64_t> seen;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < bytes_per_entry; ++j) {
      EXPECT_TRUE(levels.count(GridByte(grid[i], j))) << name << " entry " << i << " byte " << j;
    }
    EXPECT_TRUE(seen.insert(grid[i]).second) << name << " entry " << i << " repeats";
  }
}

TEST(quantIQGrids, LevelSetsAndDistinctEntries) {
  const std::set<int> iq2 = {8, 25, 43};
  ExpectLevels(kIQ2XXSGrid, 256, 8, iq2, "iq2xxs");
  ExpectLevels(kIQ2XSGrid, 512, 8, iq2, "iq2xs");
  ExpectLevels(kIQ2SGrid, 1024, 8, iq2, "iq2s");
  ExpectLevels(kIQ3XXSGrid, 256, 4, {4, 12, 20, 28, 36, 44, 52, 62}, "iq3xxs");
  ExpectLevels(kIQ3SGrid, 512, 4, {1, 3, 5, 7, 9, 11, 13, 15}, "iq3s");
  ExpectLevels(kIQ1SGrid, 2048, 8, {0x00, 0x01, 0xff}, "iq1s");
}

// The IQ2 grids are stored in ascending order of their 64-bit values (so are the IQ3 ones as u32).
TEST(quantIQGrids, SortedWhereGgmlSortsThem) {
  for (int i = 1; i < 256; ++i) EXPECT_LT(kIQ2XXSGrid[i - 1], kIQ2XXSGrid[i]) << i;
  for (int i = 1; i < 512; ++i) EXPECT_LT(kIQ2XSGrid[i - 1], kIQ2XSGrid[i]) << i;
  for (int i = 1; i < 1024; ++i) EXPECT_LT(kIQ2SGrid[i - 1], kIQ2SGrid[i]) << i;
  for (int i = 1; i < 256; ++i) EXPECT_LT(kIQ3XXSGrid[i - 1], kIQ3XXSGrid[i]) << i;
  for (int i = 1; i < 512; ++i) EXPECT_LT(kIQ3SGrid[i - 1], kIQ3SGrid[i]) << i;
}

TEST(quantIQGrids, SignTableHasEvenParity) {
  for (int s = 0; s < 128; ++s) {
    const int expect = s | ((std::popcount(static_cast<unsigned>(s)) & 1) << 7);
    EXPECT_EQ(kIQ2XSSigns[s], expect) << s;
  }
}

}  // namespace
}  // namespace pocketlm::quant
