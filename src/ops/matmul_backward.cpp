// Blocked f32 GEMM written once with Google Highway (compiled for every target of the platform, picked at run time)
// and the weight-input-gradient product built on it: the weight tile is the packed B operand, dequantized instead of
// copied.
//
// Blocking (Goto & van de Geijn 2008, "Anatomy of high-performance matrix multiplication"): for each chunk of kKc
// values of the inner dimension, a (kKc, nc) block of op(B) is packed row-major with rows padded to the register
// tile width NR, then (kMc, kKc) blocks of op(A) are packed in strips of kMR rows; the register kernel keeps a
// (kMR, NR) tile of C in registers while a (kKc, NR) strip of B stays in L1.
#include "ops/matmul_backward.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "ops/matmul.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul_backward.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef PLM_MATMUL_BACKWARD_SHARED
#define PLM_MATMUL_BACKWARD_SHARED
namespace pocketlm {
namespace {

constexpr int64_t kMR = 4;    // rows of the register tile
constexpr int64_t kKc = 256;  // inner-dimension chunk
constexpr int64_t kMc = 64;   // rows of op(A) packed at once
constexpr int64_t kNc = 256;  // columns of a task; a multiple of every block size (1, 32, 256)

// Fills dst (kc rows of nc_pad floats) with op(B)[k0 : k0 + kc, n0 : n0 + nc], zeros past nc.
using PackBFn = std::function<void(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nc_pad, float* dst)>;

// One GEMM call: C[m, n] = alpha * sum_k op(A)[m, k] op(B)[k, n] + beta * C[m, n], cut into tasks of (item_m, kNc).
struct GemmJob {
  bool trans_a;
  const float* A;
  int64_t lda;
  const PackBFn* pack_b;
  int64_t M, N, K;
  float alpha, beta;
  float* C;
  int64_t ldc;
  int64_t item_m;  // rows of C per task
  int64_t tiles_n() const { return (N + kNc - 1) / kNc; }
  int64_t items() const { return (M + item_m - 1) / item_m * tiles_n(); }
};

}  // namespace
}  // namespace pocketlm
#endif  // PLM_MATMUL_BACKWARD_SHARED

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// tile (kMR, 2 vectors) = sum_k a[k * kMR + r] * b[k * ldb + c]: 8 accumulators, 2 loads and 4 broadcasts per 8 FMAs.
void Kernel(int64_t kc, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t ldb,
            float* HWY_RESTRICT tile) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto c00 = hn::Zero(d), c01 = hn::Zero(d), c10 = hn::Zero(d), c11 = hn::Zero(d);
  auto c20 = hn::Zero(d), c21 = hn::Zero(d), c30 = hn::Zero(d), c31 = hn::Zero(d);
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    const auto b0 = hn::LoadU(d, bk), b1 = hn::LoadU(d, bk + N);
    const float* ak = a + k * kMR;
    auto av = hn::Set(d, ak[0]);
    c00 = hn::MulAdd(av, b0, c00), c01 = hn::MulAdd(av, b1, c01);
    av = hn::Set(d, ak[1]);
    c10 = hn::MulAdd(av, b0, c10), c11 = hn::MulAdd(av, b1, c11);
    av = hn::Set(d, ak[2]);
    c20 = hn::MulAdd(av, b0, c20), c21 = hn::MulAdd(av, b1, c21);
    av = hn::Set(d, ak[3]);
    c30 = hn::MulAdd(av, b0, c30), c31 = hn::MulAdd(av, b1, c31);
  }
  hn::StoreU(c00, d, tile), hn::StoreU(c01, d, tile + N);
  hn::StoreU(c10, d, tile + 2 * N), hn::StoreU(c11, d, tile + 3 * N);
  hn::StoreU(c20, d, tile + 4 * N), hn::StoreU(c21, d, tile + 5 * N);
  hn::StoreU(c30, d, tile + 6 * N), hn::StoreU(c31, d, tile + 7 * N);
}

// dst[(s * kc + k) * kMR + r] = op(A)[m0 + s * kMR + r, k0 + k], zero for rows >= M (strips of kMR rows).
void PackA(const GemmJob& j, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t s = 0; s < (mc + kMR - 1) / kMR; ++s) {
    float* ds = dst + s * kc * kMR;
    for (int64_t r = 0; r < kMR; ++r) {
      const int64_t m = m0 + s * kMR + r;
      if (m >= m0 + mc) {
        for (int64_t k = 0; k < kc; ++k) ds[k * kMR + r] = 0.0f;
      } else if (j.trans_a) {
        for (int64_t k = 0; k < kc; ++k) ds[k * kMR + r] = j.A[(k0 + k) * j.lda + m];
      } else {
        const float* src = j.A + m * j.lda + k0;
        for (int64_t k = 0; k < kc; ++k) ds[k * kMR + r] = src[k];
      }
    }
  }
}

// C[m0 : m0 + mc, n0 : n0 + nc] (=, beta *, or +=) alpha * packed A (mc, kc) * packed B (kc, nc_pad).
void Macro(const GemmJob& j, int64_t m0, int64_t mc, int64_t n0, int64_t nc, int64_t kc, int64_t nc_pad,
           const float* apack, const float* bpack, bool first, float* tile) {
  const int64_t nr = 2 * static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int64_t cols = std::min(nr, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      Kernel(kc, apack + ir * kc, bpack + jr, nc_pad, tile);
      const int64_t rows = std::min(kMR, mc - ir);
      for (int64_t r = 0; r < rows; ++r) {
        float* c = j.C + (m0 + ir + r) * j.ldc + n0 + jr;
        const float* t = tile + r * nr;
        if (!first) {
          for (int64_t x = 0; x < cols; ++x) c[x] += j.alpha * t[x];
        } else if (j.beta == 0.0f) {
          for (int64_t x = 0; x < cols; ++x) c[x] = j.alpha * t[x];
        } else {
          for (int64_t x = 0; x < cols; ++x) c[x] = j.beta * c[x] + j.alpha * t[x];
        }
      }
    }
  }
}

// Runs tasks [begin, end) of the job; each computes one (item_m, kNc) block of C over the whole inner dimension.
void GemmItems(const GemmJob& j, size_t begin, size_t end) {
  const int64_t nr = 2 * static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  const int64_t nc_pad_max = (kNc + nr - 1) / nr * nr;
  std::vector<float> apack(static_cast<size_t>(kMc * kKc)), bpack(static_cast<size_t>(kKc * nc_pad_max));
  std::vector<float> tile(static_cast<size_t>(kMR * nr));
  for (size_t item = begin; item < end; ++item) {
    const int64_t m_begin = static_cast<int64_t>(item) / j.tiles_n() * j.item_m;
    const int64_t m_end = std::min(j.M, m_begin + j.item_m);
    const int64_t n0 = static_cast<int64_t>(item) % j.tiles_n() * kNc;
    const int64_t nc = std::min(kNc, j.N - n0);
    const int64_t nc_pad = (nc + nr - 1) / nr * nr;
    for (int64_t k0 = 0; k0 < j.K; k0 += kKc) {
      const int64_t kc = std::min(kKc, j.K - k0);
      (*j.pack_b)(k0, kc, n0, nc, nc_pad, bpack.data());
      for (int64_t m0 = m_begin; m0 < m_end; m0 += kMc) {
        const int64_t mc = std::min(kMc, m_end - m0);
        PackA(j, m0, mc, k0, kc, apack.data());
        Macro(j, m0, mc, n0, nc, kc, nc_pad, apack.data(), bpack.data(), k0 == 0, tile.data());
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(GemmItems);

namespace {

void RunJob(const GemmJob& j, ThreadPool* pool) {
  if (j.K <= 0) {  // no products: C = beta * C
    for (int64_t m = 0; m < j.M; ++m) {
      for (int64_t n = 0; n < j.N; ++n) {
        float& c = j.C[m * j.ldc + n];
        c = j.beta == 0.0f ? 0.0f : j.beta * c;
      }
    }
    return;
  }
  const auto items = static_cast<size_t>(j.items());
  auto body = [&](size_t begin, size_t end) { HWY_DYNAMIC_DISPATCH(GemmItems)(j, begin, end); };
  // Small products (a LoRA factor of a single token) are not worth waking the pool for.
  if (pool == nullptr || j.M * j.N * j.K < 65536) {
    body(0, items);
  } else {
    pool->ParallelFor(items, body);
  }
}

}  // namespace

void GemmF32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
             const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  const PackBFn pack_b = [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nc_pad, float* dst) {
    if (trans_b) {
      // Read each stored row (a column of op(B)) contiguously; the kc destination lines being written stay in L1.
      for (int64_t n = 0; n < nc; ++n) {
        const float* src = B + (n0 + n) * ldb + k0;
        for (int64_t k = 0; k < kc; ++k) dst[k * nc_pad + n] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) std::copy_n(B + (k0 + k) * ldb + n0, nc, dst + k * nc_pad);
    }
    for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * nc_pad + nc, dst + (k + 1) * nc_pad, 0.0f);
  };
  // Task shape: every row of C when there are enough column tiles to share (op(B) is then packed once, op(A) once
  // per column tile), else 64 or 16 rows (e.g. M = 256 tokens, N = 16 LoRA rank: 16 tasks of 16 rows).
  const int64_t tiles_n = (N + kNc - 1) / kNc;
  const int64_t item_m = tiles_n >= 8 ? M : tiles_n * ((M + 63) / 64) >= 16 ? 64 : 16;
  RunJob({trans_a, A, lda, &pack_b, M, N, K, alpha, beta, C, ldc, item_m}, pool);
}

void MatMulWeightsBackwardInput(const TensorView& w, const float* dy, int64_t n_tokens, int64_t dy_stride, float* dx,
                                int64_t dx_stride, bool accumulate, ThreadPool* pool) {
  if (n_tokens <= 0 || w.n_in() <= 0) return;
  const auto block = static_cast<int64_t>(GetDTypeInfo(w.type).block_size);
  const auto block_bytes = static_cast<int64_t>(GetDTypeInfo(w.type).type_size);
  // op(B) = W (n_out, n_in): row k0 + k, columns [n0, n0 + nc) start at a block boundary (n0 and kNc are multiples
  // of the block size) and are dequantized by DequantizeRow on a view of just those blocks.
  const PackBFn pack_b = [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nc_pad, float* dst) {
    TensorView part = w;
    part.ne[0] = nc;
    part.ne[1] = part.ne[2] = part.ne[3] = 1;
    for (int64_t k = 0; k < kc; ++k) {
      part.data = w.row(k0 + k) + n0 / block * block_bytes;
      part.nbytes = static_cast<size_t>(nc / block * block_bytes);
      DequantizeRow(part, 0, dst + k * nc_pad);
      std::fill(dst + k * nc_pad + nc, dst + (k + 1) * nc_pad, 0.0f);
    }
  };
  // One task per kNc columns of dx with every token in it: each weight value is dequantized once.
  RunJob({false, dy, dy_stride, &pack_b, n_tokens, w.n_in(), w.n_out(), 1.0f, accumulate ? 1.0f : 0.0f, dx, dx_stride,
          n_tokens},
         pool);
}

}  // namespace pocketlm
#endif  // HWY_ONCE
