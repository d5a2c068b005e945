// Scalar references for the quantized dot products: ggml-cpu's ggml_vec_dot_*_q8_*_generic (ggml-cpu/quants.c),
// term for term. Integer sums per block are exact; the float scaling and the accumulation keep ggml's order, so
// these return what llama.cpp's scalar build returns. Blocks are copied out with memcpy because rows may start at
// any byte address.
#include <array>
#include <cstring>

#include "ops/quant_dot.h"
#include "ops/quant_dot_internal.h"
#include "tensor/half.h"
#include "tensor/quant/blocks.h"
#include "tensor/quant/iq_grids.h"

namespace pocketlm::reference {
namespace {

using namespace quant;  // NOLINT(google-build-using-namespace): block structs and sizes
using quant_dot_internal::UnpackK4Scales;
using quant_dot_internal::UnpackQ3Scales;

template <class B>
B BlockAt(const void* row, int64_t i) {
  B b;
  std::memcpy(&b, static_cast<const uint8_t*>(row) + i * static_cast<int64_t>(sizeof(B)), sizeof(B));
  return b;
}

float H(uint16_t h) {
  return F16ToF32(h);
}

// ggml_vec_dot_q4_0_q8_0_generic
float DotQ4_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockQ4_0>(vx, ib);
    const auto y = BlockAt<BlockQ8_0>(vy, ib);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      sumi0 += ((x.qs[j] & 0x0F) - 8) * y.qs[j];
      sumi1 += ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
    }
    const int sumi = sumi0 + sumi1;
    sumf += static_cast<float>(sumi) * H(x.d) * H(y.d);
  }
  return sumf;
}

// ggml_vec_dot_q4_1_q8_1_generic
float DotQ4_1(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockQ4_1>(vx, ib);
    const auto y = BlockAt<BlockQ8_1>(vy, ib);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      sumi0 += (x.qs[j] & 0x0F) * y.qs[j];
      sumi1 += (x.qs[j] >> 4) * y.qs[j + 16];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H(x.d) * H(y.d)) * static_cast<float>(sumi) + H(x.m) * H(y.s);
  }
  return sumf;
}

uint32_t Qh32(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

// ggml_vec_dot_q5_0_q8_0_generic
float DotQ5_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockQ5_0>(vx, ib);
    const auto y = BlockAt<BlockQ8_0>(vy, ib);
    const uint32_t qh = Qh32(x.qh);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      sumi0 += (((x.qs[j] & 0x0F) | xh0) - 16) * y.qs[j];
      sumi1 += (((x.qs[j] >> 4) | xh1) - 16) * y.qs[j + 16];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H(x.d) * H(y.d)) * static_cast<float>(sumi);
  }
  return sumf;
}

// ggml_vec_dot_q5_1_q8_1_generic
float DotQ5_1(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockQ5_1>(vx, ib);
    const auto y = BlockAt<BlockQ8_1>(vy, ib);
    const uint32_t qh = Qh32(x.qh);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      sumi0 += ((x.qs[j] & 0x0F) | xh0) * y.qs[j];
      sumi1 += ((x.qs[j] >> 4) | xh1) * y.qs[j + 16];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (H(x.d) * H(y.d)) * static_cast<float>(sumi) + H(x.m) * H(y.s);
  }
  return sumf;
}

// ggml_vec_dot_q8_0_q8_0_generic
float DotQ8_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockQ8_0>(vx, ib);
    const auto y = BlockAt<BlockQ8_0>(vy, ib);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += x.qs[j] * y.qs[j];
    sumf += static_cast<float>(sumi) * (H(x.d) * H(y.d));
  }
  return sumf;
}

// ggml_vec_dot_iq4_nl_q8_0_generic
float DotIQ4_NL(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto x = BlockAt<BlockIQ4_NL>(vx, ib);
    const auto y = BlockAt<BlockQ8_0>(vy, ib);
    const float d = H(y.d) * H(x.d);
    int sumi1 = 0, sumi2 = 0;
    for (int j = 0; j < 16; ++j) {
      sumi1 += y.qs[j] * kIQ4NLValues[x.qs[j] & 0xF];
      sumi2 += y.qs[j + 16] * kIQ4NLValues[x.qs[j] >> 4];
    }
    sumf += d * static_cast<float>(sumi1 + sumi2);
  }
  return sumf;
}

// ggml_vec_dot_q2_K_q8_K_generic
float DotQ2_K(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<BlockQ2_K>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    const uint8_t* q2 = x.qs;
    const int8_t* q8 = y.qs;
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y.bsums[j] * (x.scales[j] >> 4);
    const float dall = y.d * H(x.d);
    const float dmin = y.d * H(x.dmin);
    int isum = 0;
    int is = 0;
    for (int k = 0; k < kQK_K / 128; ++k) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int part = 0; part < 2; ++part) {
          const int d = x.scales[is++] & 0xF;
          int isuml = 0;
          for (int l = 16 * part; l < 16 * part + 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
          isum += d * isuml;
        }
        shift += 2;
        q8 += 32;
      }
      q2 += 32;
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

// The second half of ggml's k-quant generic dots: 8 lanes of aux32 += scale * q8 * a, 8 values at a time, for
// sub-blocks of `sub` values; `scales` per sub-block.
void AccumulateK(const int8_t* a, const int8_t* q8, const int* scales, int sub, int32_t* aux32) {
  for (int j = 0; j < kQK_K / sub; ++j) {
    for (int k = 0; k < sub / 8; ++k) {
      for (int l = 0; l < 8; ++l) aux32[l] += scales[j] * (q8[l] * a[l]);
      q8 += 8;
      a += 8;
    }
  }
}

// ggml_vec_dot_q3_K_q8_K_generic
float DotQ3_K(const void* vx, const void* vy, int64_t nb) {
  float sums[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<BlockQ3_K>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    int8_t aux8[kQK_K];
    int8_t* a = aux8;
    const uint8_t* q3 = x.qs;
    uint8_t m = 1;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int l = 0; l < 32; ++l) a[l] = static_cast<int8_t>(((q3[l] >> shift) & 3) - ((x.hmask[l] & m) ? 0 : 4));
        a += 32;
        m = static_cast<uint8_t>(m << 1);
      }
      q3 += 32;
    }
    int8_t sc8[16];
    UnpackQ3Scales(x.scales, sc8);
    int scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = sc8[j] - 32;
    int32_t aux32[8] = {};
    AccumulateK(aux8, y.qs, scales, 16, aux32);
    const float d = H(x.d) * y.d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  float sumf = 0;
  for (float s : sums) sumf += s;
  return sumf;
}

// ggml_vec_dot_q4_K_q8_K_generic and ggml_vec_dot_q5_K_q8_K_generic (qh == nullptr for Q4_K).
template <class B>
float DotQ45_K(const void* vx, const void* vy, int64_t nb) {
  float sums[8] = {};
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<B>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    int8_t aux8[kQK_K];
    int8_t* a = aux8;
    const uint8_t* q4 = x.qs;
    uint8_t m = 1;
    for (int j = 0; j < kQK_K / 64; ++j) {
      for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 32; ++l) {
          a[l] = static_cast<int8_t>(half == 0 ? (q4[l] & 0xF) : (q4[l] >> 4));
          if constexpr (sizeof(B) == sizeof(BlockQ5_K)) a[l] = static_cast<int8_t>(a[l] + ((x.qh[l] & m) ? 16 : 0));
        }
        a += 32;
        m = static_cast<uint8_t>(m << 1);
      }
      q4 += 32;
    }
    uint8_t sc[8], mins[8];
    UnpackK4Scales(x.scales, sc, mins);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += y.bsums[j] * mins[j / 2];
    int scales[8];
    for (int j = 0; j < 8; ++j) scales[j] = sc[j];
    int32_t aux32[8] = {};
    AccumulateK(aux8, y.qs, scales, 32, aux32);
    const float d = H(x.d) * y.d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
    const float dmin = H(x.dmin) * y.d;
    sumf -= dmin * static_cast<float>(sumi);
  }
  for (float s : sums) sumf += s;
  return sumf;
}

// ggml_vec_dot_q6_K_q8_K_generic
float DotQ6_K(const void* vx, const void* vy, int64_t nb) {
  float sums[8] = {};
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<BlockQ6_K>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    int8_t aux8[kQK_K];
    int8_t* a = aux8;
    const uint8_t* q4 = x.ql;
    const uint8_t* qh = x.qh;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        a[l + 0] = static_cast<int8_t>(((q4[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        a[l + 32] = static_cast<int8_t>(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        a[l + 64] = static_cast<int8_t>(((q4[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        a[l + 96] = static_cast<int8_t>(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      a += 128;
      q4 += 64;
      qh += 32;
    }
    int scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = x.scales[j];
    int32_t aux32[8] = {};
    AccumulateK(aux8, y.qs, scales, 16, aux32);
    const float d = H(x.d) * y.d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  float sumf = 0;
  for (float s : sums) sumf += s;
  return sumf;
}

// ggml_vec_dot_iq4_xs_q8_K_generic: one float term per sub-block of 32.
float DotIQ4_XS(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0;
  for (int64_t ibl = 0; ibl < nb; ++ibl) {
    const auto x = BlockAt<BlockIQ4_XS>(vx, ibl);
    const auto y = BlockAt<BlockQ8_K>(vy, ibl);
    const float d4d8 = H(x.d) * y.d;
    uint32_t h = x.scales_h;
    const uint8_t* qs = x.qs;
    const int8_t* q8 = y.qs;
    for (int ib = 0; ib < kQK_K / 32; ib += 2) {
      const int ls1 = (x.scales_l[ib / 2] & 0xF) | static_cast<int>((h << 4) & 0x30);
      const int ls2 = (x.scales_l[ib / 2] >> 4) | static_cast<int>((h << 2) & 0x30);
      h >>= 4;
      const float d1 = d4d8 * static_cast<float>(ls1 - 32);
      const float d2 = d4d8 * static_cast<float>(ls2 - 32);
      for (const float dl : {d1, d2}) {
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < 16; ++j) {
          sumi1 += q8[j] * kIQ4NLValues[qs[j] & 0xF];
          sumi2 += q8[j + 16] * kIQ4NLValues[qs[j] >> 4];
        }
        sumf += dl * static_cast<float>(sumi1 + sumi2);
        qs += 16;
        q8 += 32;
      }
    }
  }
  return sumf;
}

// ---- lattice i-quants (codebooks in tensor/quant/iq_grids.h) ---------------------------------------------------

// Value j of a group of 8 times its activation, negated where bit j of `signs` is set (ggml's kmask_iq2xs[j]).
int SignedGroupDot(uint64_t entry, uint8_t signs, const int8_t* q8) {
  int sum = 0;
  for (int j = 0; j < 8; ++j) sum += GridByte(entry, j) * q8[j] * ((signs >> j) & 1 ? -1 : 1);
  return sum;
}

// Two 4-value IQ3 grid entries as one group of 8 (first entry in bytes 0-3), as ggml's grid1 / grid2 pair.
uint64_t Iq3Pair(uint32_t lo, uint32_t hi) {
  return static_cast<uint64_t>(lo) | static_cast<uint64_t>(hi) << 32;
}

uint32_t LoadLE32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The frame shared by ggml's IQ2 / IQ3 generic dots: per block d = d_x * d_y and the integer bsum over the 8
// sub-blocks of 32, sub(x, ib, q8) being sub-block ib's scaled sum (sumi * ls, or ls1 * sumi1 + ls2 * sumi2); then
// sumf += d * bsum, and `factor` * sumf at the end (0.125 for IQ2, 0.25 for IQ3_XXS, 1 for IQ3_S).
template <class B, class Sub>
float LatticeDot(const void* vx, const void* vy, int64_t nb, float factor, const Sub& sub) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<B>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    const float d = H(x.d) * y.d;
    int32_t bsum = 0;
    for (int ib = 0; ib < kQK_K / 32; ++ib) bsum += sub(x, ib, y.qs + 32 * ib);
    sumf += d * static_cast<float>(bsum);
  }
  return factor * sumf;
}

// ggml_vec_dot_iq2_xxs_q8_K_generic
float DotIQ2_XXS(const void* vx, const void* vy, int64_t nb) {
  return LatticeDot<BlockIQ2_XXS>(vx, vy, nb, 0.125f, [](const BlockIQ2_XXS& x, int ib, const int8_t* q8) {
    const auto* q2 = reinterpret_cast<const uint8_t*>(x.qs) + 8 * ib;
    const uint32_t meta = LoadLE32(q2 + 4);
    int32_t sumi = 0;
    for (int l = 0; l < 4; ++l)
      sumi += SignedGroupDot(kIQ2XXSGrid[q2[l]], kIQ2XSSigns[(meta >> 7 * l) & 127], q8 + 8 * l);
    return sumi * static_cast<int32_t>(2 * (meta >> 28) + 1);
  });
}

// ggml_vec_dot_iq2_xs_q8_K_generic
float DotIQ2_XS(const void* vx, const void* vy, int64_t nb) {
  return LatticeDot<BlockIQ2_XS>(vx, vy, nb, 0.125f, [](const BlockIQ2_XS& x, int ib, const int8_t* q8) {
    int32_t sumi[2] = {0, 0};
    for (int l = 0; l < 4; ++l) {
      const uint16_t q = x.qs[4 * ib + l];
      sumi[l / 2] += SignedGroupDot(kIQ2XSGrid[q & 511], kIQ2XSSigns[q >> 9], q8 + 8 * l);
    }
    return sumi[0] * (2 * (x.scales[ib] & 0xf) + 1) + sumi[1] * (2 * (x.scales[ib] >> 4) + 1);
  });
}

// ggml_vec_dot_iq2_s_q8_K_generic
float DotIQ2_S(const void* vx, const void* vy, int64_t nb) {
  return LatticeDot<BlockIQ2_S>(vx, vy, nb, 0.125f, [](const BlockIQ2_S& x, int ib, const int8_t* q8) {
    const uint8_t* qs = x.qs + 4 * ib;
    const uint8_t* signs = x.qs + kQK_K / 8 + 4 * ib;
    int sumi[2] = {0, 0};
    for (int l = 0; l < 4; ++l) {
      const int index = qs[l] | ((x.qh[ib] << (8 - 2 * l)) & 0x300);
      sumi[l / 2] += SignedGroupDot(kIQ2SGrid[index], signs[l], q8 + 8 * l);
    }
    return (1 + 2 * (x.scales[ib] & 0xf)) * sumi[0] + (1 + 2 * (x.scales[ib] >> 4)) * sumi[1];
  });
}

// ggml_vec_dot_iq3_xxs_q8_K_generic
float DotIQ3_XXS(const void* vx, const void* vy, int64_t nb) {
  return LatticeDot<BlockIQ3_XXS>(vx, vy, nb, 0.25f, [](const BlockIQ3_XXS& x, int ib, const int8_t* q8) {
    const uint8_t* q3 = x.qs + 8 * ib;
    const uint32_t meta = LoadLE32(x.qs + kQK_K / 4 + 4 * ib);  // 4 x 7 sign bits, scale in bits 28-31
    int32_t sumi = 0;
    for (int l = 0; l < 4; ++l) {
      const uint64_t entry = Iq3Pair(kIQ3XXSGrid[q3[2 * l]], kIQ3XXSGrid[q3[2 * l + 1]]);
      sumi += SignedGroupDot(entry, kIQ2XSSigns[(meta >> 7 * l) & 127], q8 + 8 * l);
    }
    return sumi * static_cast<int32_t>(2 * (meta >> 28) + 1);
  });
}

// ggml_vec_dot_iq3_s_q8_K_generic
float DotIQ3_S(const void* vx, const void* vy, int64_t nb) {
  return LatticeDot<BlockIQ3_S>(vx, vy, nb, 1.0f, [](const BlockIQ3_S& x, int ib, const int8_t* q8) {
    const uint8_t* qs = x.qs + 8 * ib;
    const int qh = x.qh[ib];
    int32_t sumi = 0;
    for (int l = 0; l < 4; ++l) {
      const uint32_t lo = kIQ3SGrid[qs[2 * l] | ((qh << (8 - 2 * l)) & 256)];
      const uint32_t hi = kIQ3SGrid[qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256)];
      sumi += SignedGroupDot(Iq3Pair(lo, hi), x.signs[4 * ib + l], q8 + 8 * l);
    }
    return sumi * (2 * ((x.scales[ib / 2] >> 4 * (ib % 2)) & 0xf) + 1);
  });
}

// Signed grid values of an IQ1 group of 8 times its activations.
int Iq1GroupDot(uint64_t entry, const int8_t* q8) {
  int sum = 0;
  for (int j = 0; j < 8; ++j) sum += q8[j] * static_cast<int8_t>(GridByte(entry, j));
  return sum;
}

// The frame of ggml's IQ1 generic dots: per block sub(x, y, ib, sumi, sumi1) adds sub-block ib's scaled grid sum
// to sumi and its delta-signed, scaled activation sum to sumi1; then sumf += d_x * d_y * (sumi + delta * sumi1).
template <class B, class DOf, class Sub>
float Iq1Dot(const void* vx, const void* vy, int64_t nb, const DOf& d_of, const Sub& sub) {
  float sumf = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = BlockAt<B>(vx, i);
    const auto y = BlockAt<BlockQ8_K>(vy, i);
    int sumi = 0, sumi1 = 0;
    for (int ib = 0; ib < kQK_K / 32; ++ib) sub(x, y, ib, sumi, sumi1);
    sumf += d_of(x) * y.d * (static_cast<float>(sumi) + kIQ1Delta * static_cast<float>(sumi1));
  }
  return sumf;
}

// ggml_vec_dot_iq1_s_q8_K_generic: the delta term through Q8_K's sums of 16.
float DotIQ1_S(const void* vx, const void* vy, int64_t nb) {
  const auto d_of = [](const BlockIQ1_S& x) { return H(x.d); };
  return Iq1Dot<BlockIQ1_S>(
      vx, vy, nb, d_of, [](const BlockIQ1_S& x, const BlockQ8_K& y, int ib, int& sumi, int& sumi1) {
        const int ls = 2 * ((x.qh[ib] >> 12) & 7) + 1;
        const int delta = (x.qh[ib] & 0x8000) != 0 ? -1 : 1;
        int lsum = 0;
        for (int l = 0; l < 4; ++l) {
          lsum += Iq1GroupDot(kIQ1SGrid[x.qs[4 * ib + l] | (((x.qh[ib] >> 3 * l) & 7) << 8)], y.qs + 32 * ib + 8 * l);
        }
        sumi += ls * lsum;
        sumi1 += ls * delta * (y.bsums[2 * ib] + y.bsums[2 * ib + 1]);
      });
}

// ggml_vec_dot_iq1_m_q8_K_generic: the delta term per group of 8 from the activations themselves; d in the top
// nibbles of the 4 scale words.
float DotIQ1_M(const void* vx, const void* vy, int64_t nb) {
  const auto words = [](const BlockIQ1_M& x) {
    uint16_t sc[4];
    std::memcpy(sc, x.scales, sizeof(sc));
    return std::array<uint16_t, 4>{sc[0], sc[1], sc[2], sc[3]};
  };
  const auto d_of = [&](const BlockIQ1_M& x) {
    const auto sc = words(x);
    return H(
        static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
  };
  return Iq1Dot<
      BlockIQ1_M>(vx, vy, nb, d_of, [&](const BlockIQ1_M& x, const BlockQ8_K& y, int ib, int& sumi1, int& sumi2) {
    const auto sc = words(x);
    const uint8_t* qh = x.qh + 2 * ib;
    const int delta[4] = {qh[0] & 0x08 ? -1 : 1, qh[0] & 0x80 ? -1 : 1, qh[1] & 0x08 ? -1 : 1, qh[1] & 0x80 ? -1 : 1};
    int sum1[2] = {0, 0}, sum2[2] = {0, 0};
    for (int l = 0; l < 4; ++l) {
      const int8_t* q8 = y.qs + 32 * ib + 8 * l;
      const int index = x.qs[4 * ib + l] | ((static_cast<uint16_t>(qh[l / 2]) << (8 - 4 * (l % 2))) & 0x700);
      int lsum2 = 0;
      for (int j = 0; j < 8; ++j) lsum2 += q8[j];
      sum1[l / 2] += Iq1GroupDot(kIQ1SGrid[index], q8);
      sum2[l / 2] += lsum2 * delta[l];
    }
    const int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 0x7) + 1;
    const int ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1;
    sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
    sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
  });
}

}  // namespace

float QuantDot(DType wt, const void* w_row, const void* act_row, int64_t n) {
  const int64_t nb32 = n / 32, nbk = n / kQK_K;
  switch (wt) {
    case DType::kQ4_0: return DotQ4_0(w_row, act_row, nb32);
    case DType::kQ4_1: return DotQ4_1(w_row, act_row, nb32);
    case DType::kQ5_0: return DotQ5_0(w_row, act_row, nb32);
    case DType::kQ5_1: return DotQ5_1(w_row, act_row, nb32);
    case DType::kQ8_0: return DotQ8_0(w_row, act_row, nb32);
    case DType::kIQ4_NL: return DotIQ4_NL(w_row, act_row, nb32);
    case DType::kQ2_K: return DotQ2_K(w_row, act_row, nbk);
    case DType::kQ3_K: return DotQ3_K(w_row, act_row, nbk);
    case DType::kQ4_K: return DotQ45_K<BlockQ4_K>(w_row, act_row, nbk);
    case DType::kQ5_K: return DotQ45_K<BlockQ5_K>(w_row, act_row, nbk);
    case DType::kQ6_K: return DotQ6_K(w_row, act_row, nbk);
    case DType::kIQ4_XS: return DotIQ4_XS(w_row, act_row, nbk);
    case DType::kIQ2_XXS: return DotIQ2_XXS(w_row, act_row, nbk);
    case DType::kIQ2_XS: return DotIQ2_XS(w_row, act_row, nbk);
    case DType::kIQ2_S: return DotIQ2_S(w_row, act_row, nbk);
    case DType::kIQ3_XXS: return DotIQ3_XXS(w_row, act_row, nbk);
    case DType::kIQ3_S: return DotIQ3_S(w_row, act_row, nbk);
    case DType::kIQ1_S: return DotIQ1_S(w_row, act_row, nbk);
    case DType::kIQ1_M: return DotIQ1_M(w_row, act_row, nbk);
    default: return 0.0f;
  }
}

}  // namespace pocketlm::reference
