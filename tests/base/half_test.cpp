// f16 / bf16 scalar conversions: exhaustive round trips, and f32 -> half rounding against an independent
// nearest-value search (round to nearest, ties to even; IEEE 754-2008 section 4.3.1).
#include "tensor/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace pocketlm {
namespace {

bool IsF16Nan(uint16_t h) {
  return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
}

// Value of an f16 bit pattern from the definition: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m for e == 0.
double F16Value(uint16_t h) {
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

// Nearest f16 by search over the positive finite values (monotonic in their bits), ties to an even mantissa,
// and |x| >= 65520 (the midpoint between 65504 and 2^16) to infinity.
uint16_t NearestF16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7C00;
  uint16_t lo = 0, hi = 0x7BFF;
  while (lo < hi) {  // largest h with F16Value(h) <= a
    const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (F16Value(mid) <= a)
      lo = mid;
    else
      hi = static_cast<uint16_t>(mid - 1);
  }
  if (lo == 0x7BFF || F16Value(lo) == a) return sign | lo;
  const double dlo = a - F16Value(lo), dhi = F16Value(static_cast<uint16_t>(lo + 1)) - a;
  if (dlo < dhi) return sign | lo;
  if (dhi < dlo) return sign | static_cast<uint16_t>(lo + 1);
  return sign | ((lo & 1) ? static_cast<uint16_t>(lo + 1) : lo);
}

TEST(HalfTest, F16ToF32IsExactForAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    const double want = F16Value(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), want) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;  // -0 stays -0
    }
  }
}

TEST(HalfTest, F16RoundTripsAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto hb = static_cast<uint16_t>(h);
    const uint16_t back = F32ToF16(F16ToF32(hb));
    if (IsF16Nan(hb)) {
      ASSERT_TRUE(IsF16Nan(back)) << std::hex << h;  // payload may change, NaN-ness and sign may not
      ASSERT_EQ(back & 0x8000, hb & 0x8000) << std::hex << h;
    } else {
      ASSERT_EQ(back, hb) << std::hex << h;
    }
  }
}

TEST(HalfTest, F32ToF16RoundsToNearestEven) {
  struct Case {
    float f;
    uint16_t h;
    const char* what;
  };
  const Case cases[] = {
      {1.0f, 0x3C00, "one"},
      {1.0f + 0x1p-11f, 0x3C00, "tie between 1 and 1+2^-10 goes to even (1)"},
      {1.0f + 3 * 0x1p-11f, 0x3C02, "tie between odd 0x3C01 and even 0x3C02 goes up"},
      {1.0f + 0x1p-11f + 0x1p-23f, 0x3C01, "just above the tie rounds up"},
      {1.0f + 0x1p-11f - 0x1p-23f, 0x3C00, "just below the tie rounds down"},
      {-2.0f, 0xC000, "negative"},
      {65504.0f, 0x7BFF, "largest finite"},
      {65519.0f, 0x7BFF, "below the overflow midpoint"},
      {65520.0f, 0x7C00, "overflow midpoint ties to infinity (even)"},
      {1e10f, 0x7C00, "overflow"},
      {-1e10f, 0xFC00, "negative overflow"},
      {INFINITY, 0x7C00, "inf"},
      {-INFINITY, 0xFC00, "-inf"},
      {0.0f, 0x0000, "zero"},
      {-0.0f, 0x8000, "negative zero"},
      {0x1p-24f, 0x0001, "smallest subnormal"},
      {0x1p-25f, 0x0000, "half the smallest subnormal ties to even (0)"},
      {0x1p-25f + 0x1p-40f, 0x0001, "just above it rounds up"},
      {3 * 0x1p-25f, 0x0002, "1.5 subnormal units tie to even (2)"},
      {1023.5f * 0x1p-24f, 0x0400, "largest subnormal + half a unit rounds into the normals"},
      {0x1p-14f, 0x0400, "smallest normal"},
      {1e-10f, 0x0000, "underflow"},
      {-1e-10f, 0x8000, "negative underflow keeps the sign"},
      {2049.0f, 0x6800, "2049 ties between 2048 and 2050, to even 2048"},
      {2051.0f, 0x6802, "2051 ties between 2050 and 2052, to even 2052"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(F32ToF16(c.f), c.h) << c.what;
    EXPECT_EQ(NearestF16(c.f), c.h) << "reference disagrees on: " << c.what;
  }
  EXPECT_TRUE(IsF16Nan(F32ToF16(NAN)));
  EXPECT_TRUE(IsF16Nan(F32ToF16(-NAN)));
}

TEST(HalfTest, F32ToF16MatchesNearestSearchOnRandomValues) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    // Exponents concentrated around the f16 range, with all mantissa bits random.
    uint32_t x = bits(rng);
    const uint32_t exp = 127 - 30 + (x % 50);  // 2^-30 .. 2^19
    x = (x & 0x807FFFFF) | (exp << 23);
    const float f = BitsToFloat(x);
    ASSERT_EQ(F32ToF16(f), NearestF16(f)) << std::hexfloat << f;
    ++checked;
  }
  EXPECT_EQ(checked, 200000);
}

TEST(HalfTest, Bf16RoundTripsAllValues) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto bb = static_cast<uint16_t>(b);
    const float f = BF16ToF32(bb);
    EXPECT_EQ(FloatToBits(f), b << 16);
    const uint16_t back = F32ToBF16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(BF16ToF32(back))) << std::hex << b;
      ASSERT_EQ(back & 0x8000, bb & 0x8000) << std::hex << b;
    } else {
      ASSERT_EQ(back, bb) << std::hex << b;
    }
  }
}

// Nearest bf16 by comparing distances in double to the two candidates around x.
uint16_t NearestBf16(float f) {
  const uint32_t x = FloatToBits(f);
  const uint32_t lo = x & 0xFFFF0000u;
  if (lo == x) return static_cast<uint16_t>(x >> 16);
  const double a = std::fabs(static_cast<double>(f));
  const double vlo = std::fabs(static_cast<double>(BitsToFloat(lo)));
  // The next magnitude up; 0x7F7F0000 + 0x10000 is infinity.
  const uint32_t hi = lo + 0x10000u;
  const double vhi =
      (hi & 0x7FFFFFFF) == 0x7F800000 ? std::ldexp(1.0, 128) : std::fabs(static_cast<double>(BitsToFloat(hi)));
  const double dlo = a - vlo, dhi = vhi - a;
  if (dlo < dhi) return static_cast<uint16_t>(lo >> 16);
  if (dhi < dlo) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

TEST(HalfTest, F32ToBf16RoundsToNearestEven) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3F80);
  EXPECT_EQ(F32ToBF16(1.0f + 0x1p-8f), 0x3F80);      // tie -> even
  EXPECT_EQ(F32ToBF16(1.0f + 3 * 0x1p-8f), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(F32ToBF16(1.0f + 0x1p-8f + 0x1p-23f), 0x3F81);
  EXPECT_EQ(F32ToBF16(-1.0f - 0x1p-8f - 0x1p-23f), 0xBF81);
  EXPECT_EQ(F32ToBF16(BitsToFloat(0x7F7FFFFF)), 0x7F80);  // FLT_MAX rounds to infinity
  EXPECT_EQ(F32ToBF16(BitsToFloat(0x7F7F7FFF)), 0x7F7F);
  EXPECT_EQ(F32ToBF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToBF16(INFINITY), 0x7F80);
  EXPECT_EQ(F32ToBF16(BitsToFloat(0x00008000)), 0x0000);  // subnormal tie -> even (0)
  EXPECT_EQ(F32ToBF16(BitsToFloat(0x00018000)), 0x0002);  // subnormal tie -> even (2)
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(NAN))));
  // A signalling NaN whose payload sits only in the low 16 bits must not become infinity.
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(BitsToFloat(0x7F800001)))));

  std::mt19937 rng(99);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const float f = BitsToFloat(bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBF16(f), NearestBf16(f)) << std::hexfloat << f;
  }
}

}  // namespace
}  // namespace pocketlm
