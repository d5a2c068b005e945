// Quantizers of the lattice i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) and their codebooks
// (src/tensor/quant/lattice_codebook.h):
//  1. Fixture: deterministic rows (std::mt19937 + Box-Muller) quantized by ggml c392e50 (quantize_iq*, one row per
//     call, after iq2xs_init / iq3xs_init), the bytes kept below as hex. Every byte must match.
//  2. Properties that need no reference: round-trip error, zero rows, finite output on extreme inputs, the lazy
//     codebooks built from two threads at once.
//  3. Golden: llama-quantize --imatrix output in ../shared/golden/imatrix (skipped when PLM_GOLDEN_DIR is unset or
//     the files are absent): quantizing the f32 model's rows with the matrix entry of the tensor's name gives the
//     file's bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "quant_test_util.h"
#include "tensor/quant/lattice_codebook.h"
#include "tensor/quant/quant.h"

namespace pocketlm::quant {
namespace {

namespace fs = std::filesystem;

const DType kLatticeTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                               DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};

// ---- deterministic inputs ------------------------------------------------------------------------------------------

// Uniform (0, 1) from mt19937's 32-bit words and N(0, 1) by Box-Muller in double (the same on every platform up to
// libm's last-bit differences in log/cos, which change the rounded float with probability ~1e-9 per value).
class FixtureRng {
 public:
  explicit FixtureRng(uint32_t seed) : gen_(seed) {}
  double Uniform() { return (static_cast<double>(gen_()) + 0.5) / 4294967296.0; }
  float Gauss() {
    const double u1 = Uniform();
    const double u2 = Uniform();
    return static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  std::mt19937 gen_;
};

struct FixtureRow {
  std::vector<float> x;
  std::vector<float> w;
};

// n values and weights, value(i) then weight(i) drawn for each i in turn.
template <typename Value, typename Weight>
FixtureRow MakeRow(int n, Value value, Weight weight) {
  FixtureRow row;
  for (int i = 0; i < n; ++i) {
    row.x.push_back(value(i));
    row.w.push_back(weight(i));
  }
  return row;
}

// The fixture's rows for one type (seeded by the type's GGUF number):
//   0: 256 Gaussian values, weights 4u with 10% zeros;
//   1: 512 heavy-tailed values (N / max(0.05, |N|)) with values 320..351 zero (a zero sub-block in the second
//      super-block: IQ1's stale delta sign and IQ3_S's shifted write positions), weights 0.5 + u;
//   2: 256 small values on a 0.0025 grid (many ties for IQ1's sort), weights 1 + i % 5.
std::vector<FixtureRow> FixtureRows(DType type) {
  FixtureRng rng(static_cast<uint32_t>(type));
  std::vector<FixtureRow> rows;
  rows.push_back(MakeRow(
      256, [&](int) { return rng.Gauss(); },
      [&](int) {
        const double u = rng.Uniform();
        return u < 0.1 ? 0.f : static_cast<float>(4 * u);
      }));
  rows.push_back(MakeRow(
      512,
      [&](int i) {
        const float g = rng.Gauss();
        return i >= 320 && i < 352 ? 0.f : g / std::max(0.05f, std::fabs(rng.Gauss()));
      },
      [&](int) { return static_cast<float>(0.5 + rng.Uniform()); }));
  rows.push_back(MakeRow(
      256, [&](int) { return std::round(rng.Gauss() * 4.f) * 0.0025f; },
      [](int i) { return static_cast<float>(1 + i % 5); }));
  return rows;
}

// u^k by multiplication (std::pow's last bit may differ between libms).
double Power(double u, int k) {
  double p = 1;
  for (int i = 0; i < k; ++i) p *= u;
  return p;
}

// Six more rows of 512 for a hash comparison (seeded by the type's number + 1000): tiny values (1e-6), a constant
// row (every value tied), 25% zeros with 20% zero weights, a wide range with skewed weights, outliers every 32
// values, and values on a 0.5 grid.
std::vector<FixtureRow> WideRows(DType type) {
  FixtureRng rng(static_cast<uint32_t>(type) + 1000);
  auto uniform = [&](int) { return static_cast<float>(0.5 + rng.Uniform()); };
  std::vector<FixtureRow> rows;
  rows.push_back(MakeRow(
      512, [&](int) { return rng.Gauss() * 1e-6f; }, uniform));
  rows.push_back(MakeRow(
      512, [](int) { return 0.5f; }, [](int i) { return static_cast<float>(1 + i % 7); }));
  rows.push_back(MakeRow(
      512, [&](int i) { return i % 4 == 1 ? 0.f : rng.Gauss(); },
      [&](int i) { return i % 5 == 2 ? 0.f : static_cast<float>(10 * rng.Uniform()); }));
  rows.push_back(MakeRow(
      512, [&](int) { return rng.Gauss() * static_cast<float>(1 + 100 * Power(rng.Uniform(), 8)); },
      [&](int) { return static_cast<float>(1e3 * Power(rng.Uniform(), 4)); }));
  rows.push_back(MakeRow(
      512, [&](int i) { return i % 32 < 3 ? 100 * rng.Gauss() : rng.Gauss(); }, [](int) { return 1.f; }));
  rows.push_back(MakeRow(
      512, [&](int) { return std::round(rng.Gauss() * 2) / 2; }, uniform));
  return rows;
}

// FNV-1a of ggml c392e50's bytes for WideRows(type) concatenated (then, for IQ3_XXS / IQ3_S, the same rows without
// importance weights).
const std::map<DType, uint64_t> kWideHash = {
    {DType::kIQ2_XXS, 0x43ce6341c9392535ull}, {DType::kIQ2_XS, 0xc33166cfb29465d5ull},
    {DType::kIQ2_S, 0xfae01326223c915cull},   {DType::kIQ3_XXS, 0x8eb10ae12f89d69cull},
    {DType::kIQ3_S, 0x3da7bebf98a89e88ull},   {DType::kIQ1_S, 0x9acc8c660acc90d7ull},
    {DType::kIQ1_M, 0xbc75d1f40569b862ull},
};

uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

// ggml c392e50's bytes for FixtureRows(type), rows 0, 1, 2 concatenated, and for IQ3_XXS / IQ3_S then row 0 without
// importance weights (their reference path).
// clang-format off
const std::map<DType, std::string> kExpectedHex = {
    {DType::kIQ2_XXS,
     "bb23878a1c5bd34fd4f40919229f739e17d30c68c0b59183a5ba22ba1f7b04d5cdb08654e9e3b318939f250cc7791ba266ce425d30583540"
     "55dd6a44690b261913a952330000193a99595b8326e8020038ea733d4a00010b2116983c0000002ba60f95ff001107002941a2600000d2d2"
     "6373e4a300001c00de8a79ac0c0711006227ef9e49330000003a2ac36bf30100d200898c935500000000000000000700000059069d6e0c00"
     "6c00e1b209a8082f51009127c22b0000030347baa5a10c1c080108d89e25b209c950b4669b01be98b237180148acceef9637e0a05bf29bbe"
     "9849cd7eb1325b949c39fe1c65d71486565d90fc8c9c069185535420418413fe0d187647f5e75d96"},
    {DType::kIQ2_XS,
     "6924e6306bf1a06a0e4455b11582927943856abbc7cda7465d3b34c32d8e0574954afe1217314c7a44739a3916148c37ff86378d563a091b"
     "89c4091611f3f7567eb8f8cd9bea8a99e78b113200f6e0921ec19b3f357200ac03fe00a66b7c003a007a0c02350e00f4a11a73561f26567a"
     "084501d00078175e0a6400ba6a1e00ec015800dc9f1d02d143880960398b3f1f528c541191352eae3205008a8d743506008a6a14a0b20000"
     "0000000000008a0dfe98cd96002c009c03462012b75400bc6a52037400ca02c5ea6603a200466afe00647a9d090c202700211882912fcc0a"
     "5a6a91c0861c3fb95eac9dfdd9ca8fa1188937da3fdf5a41ae317da9218c150ad10f941e481aac1c54770168a31f049f00d238f4171005b4"
     "1e79f23504d1d718997ad9876a56fcb6"},
    {DType::kIQ2_S,
     "9b2433ecbb74d9742b1eee463ea5c641e7557bd8ca60d9ea069603b1df9833472c578b80c6478c52a23405f79197a0aa1f2a5d565c25d4fd"
     "c35a98dba4ead8afac1597048e09f434eb386bad98bd5fba99bb3f339e0019103adb24750300010000190033039f74336133003319007400"
     "975810ed935099230d27fb37120080d44290d5db2605cea4477d4c875b3f7ecf4fd5ebbc009700c0d0ce10031d0254b781f49531c8320003"
     "a60319006a3300000000000133003f003e3a11431a0001003a00051d86386b9baa8b53000d8f00000000eac56353e0981c05a5e205dc0477"
     "b2404c96d6db00c00030c00c30be244a006fb6736c11e70965d762117e1baf749f767224220921ab241bed4f8e403eecbc3ac15cd65a2c84"
     "27321a57f0fe440412e7acb140e910984042cf4730c333275a9b057c3d4008a304668ba01cdf3992fd8cfb7e77baaaba"},
    {DType::kIQ3_XXS,
     "0c202688702940454901f10041b55a00679712de4b8f05ee0a7157419c7c47641df807269c948c1931aeadb0d6637a1109f8e6b4afa1f572"
     "b22b0a9b533b44548849b0f8d8b382877ba8295f188cd98efa98df53c8f1dab2f078f973ed6a6fd1f6a14a2e3a6a2500ec053c1600451216"
     "00000210ca108eba2029718c0004610061350100000001440000050000000040000000ee004d063a04c97600005376000a5f0088e7038a48"
     "9ab85178e681d31c3d1506ab39043f6641cd73f8f595533fe707552c622b7cf40001000cc9063a59734009ae8d0000000000000000000094"
     "173500008c00000061ee00000005060d733500020017050c00ee003a3ff20017000600160000db3e4843737a414100000000d11c61db4fe9"
     "65f105b90f9cf55eaa5adde0f5c71404452f7f225e449ac65861a166bf436613cbfb410110534823708416631a1d7ba798f610c709941445"
     "4188a87000c008a1dffa608d4d4c0ed002027307e1021feb88a783d543cf08bc5814c8e61f9b90b31f887bfcc6d704a29a2394edbfe509cd"
     "1c20298897294045410ddb00089c5a00276812d118636cee1669230775986a64dfef07269c948c4b31aeadb0d663b64213f8e6b26c4ece43"
     "972920754c52141a2f3db0f8d8a38287fbb0295f18ac598ffaa15f52c8f1dab2f088f973ed8a6fe196d1"},
    {DType::kIQ3_S,
     "b91e14ca6a234f382d30e28035aa8ab8565b40d76ce9db99882bad0c8d95150ec49a772d167299230753f5142d8629772e8e2caa3d59f0e9"
     "118ad83f84020b787b0e05a64400a51214802232bb1bd60fd627b798e6eed7e825162881484c566d5467ad6fbc1a0108f59d8dbecbfbb12e"
     "01c40000011900c400000002040000002003c7ddca8d6e000120dd6d67cd0e007e00000003c501008d00d6001900290073016d0a04db1b2a"
     "290a0000000500fe020008040004000069681ac693c0a2a76d27455de0c892a0e39f31d41c43836508bf70eacc7d0561f44679b4c52f0014"
     "00000000000014c4496d00007105000000026d3902000019000000140000006400dd5b6d293a497f764916326e0e00000629000400000000"
     "000000000000000000000098000077304adfb069943cbe9b59ebfdcdac7fe4dd4dd78bc11b0944201bf2000000005cb08cf51c04389060d1"
     "2af6531c325fd7fb242ee777207e45148a5127f085864df3959b1e64c1d0aa817b2ea8982ea4294b22e97b2d5be67b190e81122dca0599a0"
     "67e752a4340da41064164598261b2902884a6c21b7902dea99d0509baf6fa904b533b703d04b10412d59cb37a9cbecfe322014ca6a234f38"
     "2d8ee28035fa8ab8b42840d76ce9db3c882ba37a8d381789283d772d167299207353f5bd2d8629772ee92c413d59c534118a7d301c01050b"
     "870705a64440a51034802232bb1bd60fd627b798e6eed7e825162881484c566d5467ad6fbc1a0108f59d7b7b99f9"},
    {DType::kIQ1_S,
     "4f3188fd05b6e8a9a0cca3818ff8c24874f08a6fbc07f17d0f3b2ede71dac87c55e81c778638644cd9540237793314ddc3c4014051ea02ab"
     "e805bb40fd3df31f02a506e205e2050505cd05058c1a05fd4f0b02931c81a21d4c173c5514f91cc924b72113e6400502f004e20505240000"
     "000002051a05f10402221a05f004060d050e37e4743de4e822eb000024f9231be44824a951037e15e9c0ee61b58c7346b4df8bf249efdeb4"
     "d890209bfff71d8eb439e0442b2e3b21b05ad1d51259805614f5bace9d542c6b"},
    {DType::kIQ1_M,
     "eb205a94965f86afeb08b4d4fcb9fd2d00ef5b9b35d618396ab4386d61976093f34983f3d0ab67d2314cedb633bd63932419dfaaee066539"
     "3d0de205051ad105fd0505cf3d6841fdce8ed12c04f14e0508d157c1a45acf1ac1ca44c6cbb409bcb3462c496440a74b2d6f4c5442060142"
     "0e41410206e229d200000000d1d42c05f0cf3dcf240514053e05814704e205e147cca46d8880e6443b3945c4c41c2cacd9fa000df2f9c43c"
     "98aa003ffd67c2f9a8e2bfca3c839e37112d7de8d3aa62a72e88ab1c1109cd1d8c133604ccd8bea174d984fdb8d95c5364cb1d89b65d671b"},
};
// clang-format on

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

std::vector<uint8_t> Quantize(DType type, const std::vector<float>& x, const float* w) {
  std::vector<uint8_t> out(*RowBytes(type, x.size()));
  const Status s = QuantizeRow(type, x.data(), out.data(), static_cast<int64_t>(x.size()), w);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

// dequantize(quantize(row)) with the row's weights.
std::vector<float> RoundTrip(DType type, const FixtureRow& row) {
  const auto q = Quantize(type, row.x, row.w.data());
  std::vector<float> back(row.x.size());
  EXPECT_TRUE(DequantizeRow(type, q.data(), back.data(), static_cast<int64_t>(back.size())).ok());
  return back;
}

class LatticeQuantizeTest : public ::testing::TestWithParam<DType> {};

TEST_P(LatticeQuantizeTest, MatchesGgmlFixture) {
  const DType type = GetParam();
  const auto it = kExpectedHex.find(type);
  ASSERT_NE(it, kExpectedHex.end());
  const std::vector<uint8_t> expected = FromHex(it->second);
  const auto rows = FixtureRows(type);
  std::vector<uint8_t> got;
  for (const auto& row : rows) {
    const auto q = Quantize(type, row.x, row.w.data());
    got.insert(got.end(), q.begin(), q.end());
  }
  if (GetQuantTraits(type).quantize_row != nullptr) {
    const auto q = Quantize(type, rows[0].x, nullptr);
    got.insert(got.end(), q.begin(), q.end());
  }
  ASSERT_EQ(got.size(), expected.size());
  const size_t block = GetDTypeInfo(type).type_size;
  for (size_t b = 0; b < got.size(); b += block) {
    EXPECT_TRUE(std::equal(got.begin() + b, got.begin() + b + block, expected.begin() + b))
        << DTypeName(type) << " block " << b / block << " differs from ggml's";
  }
}

TEST_P(LatticeQuantizeTest, MatchesGgmlHashOnWideRows) {
  const DType type = GetParam();
  const auto rows = WideRows(type);
  std::vector<uint8_t> got;
  for (const bool weighted : {true, false}) {
    if (!weighted && GetQuantTraits(type).quantize_row == nullptr) continue;
    for (const auto& row : rows) {
      const auto q = Quantize(type, row.x, weighted ? row.w.data() : nullptr);
      got.insert(got.end(), q.begin(), q.end());
    }
  }
  EXPECT_EQ(Fnv1a(got), kWideHash.at(type)) << DTypeName(type);
}

// The types llama-quantize refuses without an importance matrix refuse here too; IQ3 has a reference path.
TEST_P(LatticeQuantizeTest, ImportanceMatrixRequirement) {
  const DType type = GetParam();
  const bool reference = type == DType::kIQ3_XXS || type == DType::kIQ3_S;
  EXPECT_EQ(NeedsImportanceMatrix(type), !reference);
  std::vector<float> x(256, 1.f);
  std::vector<uint8_t> out(*RowBytes(type, 256));
  EXPECT_EQ(QuantizeRow(type, x.data(), out.data(), 256, nullptr).ok(), reference);
}

// Gaussian rows come back within a crude bound on the relative RMS error (measured with weights 0.5 + u: IQ1_S .48,
// IQ1_M .45, IQ2_XXS .35, IQ2_XS .30, IQ2_S .25, IQ3_XXS .18, IQ3_S .14); noise or a wrong scale gives ~1.
TEST_P(LatticeQuantizeTest, RoundTripError) {
  const DType type = GetParam();
  FixtureRng rng(7);
  testing::ErrorAccumulator acc;
  for (int r = 0; r < 4; ++r) {
    const FixtureRow row = MakeRow(
        1024, [&](int) { return rng.Gauss(); }, [&](int) { return static_cast<float>(0.5 + rng.Uniform()); });
    acc.Add(row.x.data(), RoundTrip(type, row).data(), 1024);
  }
  const double bound = type == DType::kIQ1_S || type == DType::kIQ1_M     ? 0.6
                       : type == DType::kIQ3_XXS || type == DType::kIQ3_S ? 0.25
                                                                          : 0.45;
  std::printf("[ round   ] %-8s rel RMS %.4f (bound %.2f)\n", std::string(DTypeName(type)).c_str(), acc.Relative(),
              bound);
  EXPECT_LT(acc.Relative(), bound) << DTypeName(type);
}

TEST_P(LatticeQuantizeTest, ZeroRowIsAllZeroBytes) {
  const DType type = GetParam();
  const std::vector<float> x(512, 0.f);
  const std::vector<float> w(512, 1.f);
  for (const uint8_t b : Quantize(type, x, w.data())) ASSERT_EQ(b, 0) << DTypeName(type);
}

// Huge and tiny magnitudes side by side (within f16's range for the scales), zero and huge weights: the decoded
// row stays finite.
TEST_P(LatticeQuantizeTest, ExtremeInputsDecodeFinite) {
  const DType type = GetParam();
  FixtureRng rng(11);
  const FixtureRow row = MakeRow(
      512,
      [&](int i) {
        const float g = rng.Gauss();
        return i % 97 == 0 ? g * 1e3f : i % 5 == 0 ? g * 1e-30f : i % 3 == 0 ? 0.f : g;
      },
      [&](int i) { return i % 7 == 0    ? 0.f
                          : i % 11 == 0 ? 1e6f
                                        : static_cast<float>(rng.Uniform()); });
  const std::vector<float> back = RoundTrip(type, row);
  for (size_t i = 0; i < back.size(); ++i) ASSERT_TRUE(std::isfinite(back[i])) << DTypeName(type) << " value " << i;
}

std::string TypeName(const ::testing::TestParamInfo<DType>& info) {
  return std::string(DTypeName(info.param));
}
INSTANTIATE_TEST_SUITE_P(quant, LatticeQuantizeTest, ::testing::ValuesIn(kLatticeTypes), TypeName);

// Two threads quantize every type at once, each type's first use building its codebook lazily: both must see
// complete codebooks and write the fixture's bytes.
TEST(LatticeQuantize, CodebooksBuildOnceFromTwoThreads) {
  std::vector<std::vector<uint8_t>> results[2];
  auto work = [](std::vector<std::vector<uint8_t>>* out) {
    for (const DType type : kLatticeTypes) {
      const auto rows = FixtureRows(type);
      out->push_back(Quantize(type, rows[0].x, rows[0].w.data()));
    }
  };
  std::thread a(work, &results[0]);
  std::thread b(work, &results[1]);
  a.join();
  b.join();
  ASSERT_EQ(results[0].size(), std::size(kLatticeTypes));
  for (size_t t = 0; t < std::size(kLatticeTypes); ++t) {
    EXPECT_EQ(results[0][t], results[1][t]) << DTypeName(kLatticeTypes[t]);
    const auto expected = FromHex(kExpectedHex.at(kLatticeTypes[t]));
    EXPECT_TRUE(std::equal(results[0][t].begin(), results[0][t].end(), expected.begin()))
        << DTypeName(kLatticeTypes[t]);
  }
}

// The codebooks' neighbour lists, pinned by size (ggml's iq2xs_init_impl / iq3xs_init_impl build the same lists;
// the outside harness compares them entry for entry) and by one property: an off-grid key's first neighbour is at
// least as near as its last.
TEST(LatticeQuantize, CodebookShapes) {
  using detail::LatticeGrid;
  struct Shape {
    LatticeGrid grid;
    int entries;
    int group;
  };
  const Shape shapes[] = {{LatticeGrid::kIQ2XXS, 256, 8}, {LatticeGrid::kIQ2XS, 512, 8},  {LatticeGrid::kIQ2S, 1024, 8},
                          {LatticeGrid::kIQ1S, 2048, 8},  {LatticeGrid::kIQ3XXS, 256, 4}, {LatticeGrid::kIQ3S, 512, 4}};
  for (const Shape& s : shapes) {
    const auto& cb = detail::GetLatticeCodebook(s.grid);
    EXPECT_EQ(cb.group(), s.group);
    int8_t levels[8];
    for (int j = 0; j < s.entries; ++j) {
      cb.Levels(j, levels);
      ASSERT_EQ(cb.Find(cb.KeyOfLevels(levels)), j) << static_cast<int>(s.grid);
    }
  }
}

// ---- golden: llama-quantize --imatrix ---------------------------------------------------------------------------

// llama.cpp's binary imatrix (c392e50): int32 count; per entry int32 name length, name, int32 ncall, int32 n,
// n floats; values divided by ncall as llama-quantize's load_imatrix does.
std::map<std::string, std::vector<float>, std::less<>> ReadImatrix(const std::string& path) {
  std::map<std::string, std::vector<float>, std::less<>> out;
  std::ifstream in(path, std::ios::binary);
  int32_t count = 0;
  in.read(reinterpret_cast<char*>(&count), 4);
  for (int32_t e = 0; e < count && in; ++e) {
    int32_t len = 0;
    in.read(reinterpret_cast<char*>(&len), 4);
    std::string name(static_cast<size_t>(len), '\0');
    in.read(name.data(), len);
    int32_t ncall = 0;
    int32_t n = 0;
    in.read(reinterpret_cast<char*>(&ncall), 4);
    in.read(reinterpret_cast<char*>(&n), 4);
    std::vector<float> values(static_cast<size_t>(n));
    in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(n) * 4);
    if (ncall > 0) {
      for (float& v : values) v /= static_cast<float>(ncall);
    }
    out[name] = std::move(values);
  }
  return out;
}

// Every 64th row of each tensor: the search is slow (IQ2_XS: 2.5 s for the whole model in a release build, ~10x
// that under qemu), so a test of all rows would not fit the time of one test. All rows matched when this test was
// written (every block of the four files, kGoldenRowStride = 1).
constexpr int64_t kGoldenRowStride = 64;

class LatticeGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LatticeGoldenTest, ImatrixQuantizationMatchesLlamaQuantize) {
  const fs::path dir = testing::GoldenDir();
  const fs::path f32_path = dir / "models" / "llama-kq-f32.gguf";
  const fs::path q_path = dir / "imatrix" / ("llama-kq-" + GetParam() + "-im.gguf");
  const fs::path im_path = dir / "imatrix" / "llama-kq.imatrix";
  if (dir.empty() || !fs::exists(f32_path) || !fs::exists(q_path) || !fs::exists(im_path)) {
    GTEST_SKIP() << "golden files absent (set PLM_GOLDEN_DIR): " << q_path;
  }
  auto f32 = GgufFile::Open(f32_path.string());
  ASSERT_TRUE(f32.ok()) << f32.status().message();
  auto q = GgufFile::Open(q_path.string());
  ASSERT_TRUE(q.ok()) << q.status().message();
  const auto imatrix = ReadImatrix(im_path.string());
  ASSERT_FALSE(imatrix.empty());
  std::map<DType, std::pair<int64_t, int64_t>> matches;  // type -> (identical blocks, blocks)
  for (const auto& t : q->tensors()) {
    if (std::find(std::begin(kLatticeTypes), std::end(kLatticeTypes), t.type) == std::end(kLatticeTypes)) continue;
    const GgufTensorInfo* ref = f32->FindTensor(t.name);
    ASSERT_NE(ref, nullptr) << t.name;
    const int64_t n = t.ne[0];
    const auto im = imatrix.find(t.name);
    const float* weights = nullptr;
    if (im != imatrix.end()) {
      ASSERT_EQ(static_cast<int64_t>(im->second.size()), n) << t.name;
      weights = im->second.data();
    }
    const uint64_t row_bytes = *RowBytes(t.type, static_cast<uint64_t>(n));
    const size_t block = GetDTypeInfo(t.type).type_size;
    std::vector<uint8_t> mine(row_bytes);
    auto& [same, total] = matches[t.type];
    for (int64_t r = 0; r < t.n_elements() / n; r += kGoldenRowStride) {
      const Status s = QuantizeRow(t.type, reinterpret_cast<const float*>(ref->data) + r * n, mine.data(), n, weights);
      ASSERT_TRUE(s.ok()) << t.name << ": " << s.message();
      const uint8_t* theirs = t.data + r * row_bytes;
      for (uint64_t b = 0; b < row_bytes; b += block) {
        same += std::memcmp(mine.data() + b, theirs + b, block) == 0;
        ++total;
      }
    }
  }
  ASSERT_FALSE(matches.empty());
  for (const auto& [type, m] : matches) {
    std::printf("[ golden  ] %-8s %-8s --imatrix: %lld / %lld blocks byte-identical\n", GetParam().c_str(),
                std::string(DTypeName(type)).c_str(), static_cast<long long>(m.first),
                static_cast<long long>(m.second));
    EXPECT_EQ(m.first, m.second) << DTypeName(type) << ": " << m.second - m.first << " blocks differ";
  }
}

std::string FileName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}
INSTANTIATE_TEST_SUITE_P(quant, LatticeGoldenTest, ::testing::Values("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S"),
                         FileName);

}  // namespace
}  // namespace pocketlm::quant
