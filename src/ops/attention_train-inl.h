// Per-target (Highway) kernels of AttentionTrainForward / AttentionTrainBackward in f32, included once per target by
// attention_train.cpp through foreach_target.
//
// Tiling after FlashAttention (Dao et al. 2022, algorithms 1 and 2) with the D = rowsum(dO * O) shortcut of
// FlashAttention-2 (Dao 2023): a block of queries meets a block of keys through small matrix products,
//   S = Q K^T,  P = exp(softcap(scale S) - lse),  dP = dO V^T,  dS = scale P (dP - D) softcap'
//   O = P V,  dQ = dS K,  dK = dS^T Q,  dV = P^T dO
// and blocks in which every (query, key) pair is masked (causal, window, seg_start) are skipped. The forward keeps
// the scores of all visible keys of a query block (at most (T, kQ) floats) so that the max is exact before the
// exponentials, as the scalar reference does, rather than rescaling online.
//
// Determinism: every output element has one writer and a fixed summation order that depends on the shapes only:
//   forward and dq: one task per (query block of kQ rows, head), keys in increasing blocks of kK
//   dk and dv:      one task per (block of kK keys, KV head), queries in increasing chunks of kQ, heads of the
//                   group in increasing order inside each chunk.
// The scores are computed twice in the backward (once per pass), the price of having no atomics or reductions.

// Include guard (still compiled once per target), as hwy/contrib headers do.
#if defined(POCKETLM_OPS_ATTENTION_TRAIN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKETLM_OPS_ATTENTION_TRAIN_INL_H_
#undef POCKETLM_OPS_ATTENTION_TRAIN_INL_H_
#else
#define POCKETLM_OPS_ATTENTION_TRAIN_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "base/thread_pool.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/attention.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace attn_train {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes, so that kPad is a multiple of the vector length on every target (SVE included).
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
constexpr int64_t kPad = 16;  // packed rows and head_dim-wide accumulators are padded to a multiple of this
constexpr int64_t kQ = 64;    // query rows per block
constexpr int64_t kK = 64;    // keys per block

inline int64_t RoundUp(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// Vectors of C per register tile row: 4 where the target has 32 vector registers (16 accumulators, 4 B vectors and
// a broadcast), 2 on x86 before AVX-512 (16 registers).
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr int kTileCols = 2;
#else
constexpr int kTileCols = 4;
#endif

// C[r, 0 : cols] (+)= sum_k A(r, k) B[k, 0 : cols] for r < kRows (1 or 4), with A(r, k) = a[r * a_m + k * a_k] (any
// layout, read as broadcast scalars) and B row-major; cols = kCols vectors. The (kRows, kCols) tile of C stays in
// registers: per k, kCols loads and kRows broadcasts for kRows * kCols FMAs (the register kernel of GemmF32,
// widened). Every element is one chain of MulAdd over k in increasing order.
template <int kRows, int kCols>
HWY_INLINE void Tile(int64_t K, const float* HWY_RESTRICT a, int64_t a_m, int64_t a_k, const float* HWY_RESTRICT b,
                     int64_t ldb, float* HWY_RESTRICT c, int64_t ldc, bool accumulate) {
  const DF d;
  const size_t N = hn::Lanes(d);
  using V = hn::Vec<DF>;
  V c00 = hn::Zero(d), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  V c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int64_t k = 0; k < K; ++k) {
    const float* bk = b + k * ldb;
    const V b0 = hn::LoadU(d, bk);
    const V b1 = kCols > 1 ? hn::LoadU(d, bk + N) : b0;
    const V b2 = kCols > 2 ? hn::LoadU(d, bk + 2 * N) : b0;
    const V b3 = kCols > 3 ? hn::LoadU(d, bk + 3 * N) : b0;
    const auto row = [&](float x, V& r0, V& r1, V& r2, V& r3) {
      const V av = hn::Set(d, x);
      r0 = hn::MulAdd(av, b0, r0);
      if constexpr (kCols > 1) r1 = hn::MulAdd(av, b1, r1);
      if constexpr (kCols > 2) r2 = hn::MulAdd(av, b2, r2);
      if constexpr (kCols > 3) r3 = hn::MulAdd(av, b3, r3);
    };
    const float* ak = a + k * a_k;
    row(ak[0], c00, c01, c02, c03);
    if constexpr (kRows > 1) {
      row(ak[a_m], c10, c11, c12, c13);
      row(ak[2 * a_m], c20, c21, c22, c23);
      row(ak[3 * a_m], c30, c31, c32, c33);
    }
  }
  const auto store = [&](float* dst, V r0, V r1, V r2, V r3) {
    const auto one = [&](float* x, V v) { hn::StoreU(accumulate ? hn::Add(hn::LoadU(d, x), v) : v, d, x); };
    one(dst, r0);
    if constexpr (kCols > 1) one(dst + N, r1);
    if constexpr (kCols > 2) one(dst + 2 * N, r2);
    if constexpr (kCols > 3) one(dst + 3 * N, r3);
  };
  store(c, c00, c01, c02, c03);
  if constexpr (kRows > 1) {
    store(c + ldc, c10, c11, c12, c13);
    store(c + 2 * ldc, c20, c21, c22, c23);
    store(c + 3 * ldc, c30, c31, c32, c33);
  }
}

// [b, e) of a coordinate; empty when b >= e.
struct Span {
  int32_t b, e;
};

// Rows [m, m + kRows) of C over column vectors [v0, v1) (at most kTileCols at a time).
template <int kRows>
HWY_INLINE void TileRow(int64_t v0, int64_t v1, int64_t K, const float* a, int64_t a_m, int64_t a_k, const float* b,
                        int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  const auto N = static_cast<int64_t>(hn::Lanes(DF()));
  for (int64_t v = v0; v < v1; v += kTileCols) {
    const float* bv = b + v * N;
    float* cv = c + v * N;
    switch (std::min<int64_t>(kTileCols, v1 - v)) {
      case 1: Tile<kRows, 1>(K, a, a_m, a_k, bv, ldb, cv, ldc, accumulate); break;
      case 2: Tile<kRows, 2>(K, a, a_m, a_k, bv, ldb, cv, ldc, accumulate); break;
      case 3: Tile<kRows, (kTileCols > 2 ? 3 : 1)>(K, a, a_m, a_k, bv, ldb, cv, ldc, accumulate); break;
      default: Tile<kRows, kTileCols>(K, a, a_m, a_k, bv, ldb, cv, ldc, accumulate); break;
    }
  }
}

// C (M, cols) (+)= op(A) (M, K) B (K, cols), A as in Tile; cols a multiple of kPad (B and C rows hold that many).
// Optionally restricted per group of 4 rows of C (row group r: rows [4r, 4r + 4)):
//   col_span[r]: the columns computed (rounded out to vectors); the others keep whatever they held.
//   k_span[r]:   the inner indices summed over; the caller guarantees A(m, k) = 0 outside it.
// Blocks of a causal or document mask are triangles or staircases, so this skips most of the masked pairs a whole
// block would compute. B (at most (64, 64) here) stays in L1 across row groups.
void Gemm(int64_t M, int64_t cols, int64_t K, const float* a, int64_t a_m, int64_t a_k, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate, const Span* col_span = nullptr, const Span* k_span = nullptr) {
  const auto N = static_cast<int64_t>(hn::Lanes(DF()));
  for (int64_t m = 0; m < M; m += 4) {
    int64_t v0 = 0, v1 = cols / N, k0 = 0, k1 = K;
    if (col_span != nullptr) {
      v0 = col_span[m / 4].b / N, v1 = std::min<int64_t>(v1, (col_span[m / 4].e + N - 1) / N);
    }
    if (k_span != nullptr) k0 = std::max<int64_t>(0, k_span[m / 4].b), k1 = std::min<int64_t>(K, k_span[m / 4].e);
    if (v0 >= v1 || k0 >= k1) continue;
    const float* am = a + m * a_m + k0 * a_k;
    const float* bk = b + k0 * ldb;
    if (m + 4 <= M) {
      TileRow<4>(v0, v1, k1 - k0, am, a_m, a_k, bk, ldb, c + m * ldc, ldc, accumulate);
    } else {
      for (int64_t r = m; r < M; ++r) {
        TileRow<1>(v0, v1, k1 - k0, am + (r - m) * a_m, a_m, a_k, bk, ldb, c + r * ldc, ldc, accumulate);
      }
    }
  }
}

// Spans per group of 4 rows of C when row m has the visible interval [lo[m], hi[m]] (inclusive, in the coordinate of
// the spanned dimension, which starts at `base`): the union, clipped to [0, limit).
void UnionSpans(int64_t M, const int32_t* lo, const int32_t* hi, int64_t base, int64_t limit, Span* out) {
  for (int64_t m = 0; m < M; m += 4) {
    int64_t b = limit, e = 0;
    for (int64_t r = m; r < std::min(M, m + 4); ++r) {
      if (lo[r] > hi[r]) continue;
      b = std::min<int64_t>(b, lo[r] - base), e = std::max<int64_t>(e, hi[r] - base + 1);
    }
    out[m / 4] = {static_cast<int32_t>(std::max<int64_t>(b, 0)), static_cast<int32_t>(std::min(e, limit))};
  }
}

// Spans per group of 4 rows of C when row m is coordinate x0 + m and lane c of the spanned dimension sees the rows
// [lo[c], hi[c]]: the lanes that see any row of the group.
void CoverSpans(int64_t M, int64_t x0, const int32_t* lo, const int32_t* hi, int64_t lanes, Span* out) {
  for (int64_t m = 0; m < M; m += 4) {
    const int64_t first = x0 + m, last = x0 + std::min(M, m + 4) - 1;
    int64_t b = lanes, e = 0;
    for (int64_t c = 0; c < lanes; ++c) {
      if (lo[c] <= last && hi[c] >= first && lo[c] <= hi[c]) b = std::min(b, c), e = c + 1;
    }
    out[m / 4] = {static_cast<int32_t>(b), static_cast<int32_t>(e)};
  }
}

// Shape of one call and the visibility rule of the header: query t sees keys lo(t) <= j <= t.
struct Shape {
  const AttentionParams& p;
  int64_t kv_stride, T;
  const int32_t* seg_start;
  int64_t hd() const { return p.head_dim; }
  int64_t hdp() const { return RoundUp(p.head_dim, kPad); }
  int group() const { return p.n_head / p.n_head_kv; }
  int64_t q_stride() const { return static_cast<int64_t>(p.n_head) * p.head_dim; }
  int64_t lo(int64_t t) const {
    int64_t first = 0;
    if (seg_start != nullptr) first = std::max<int64_t>(first, seg_start[t]);
    if (p.window > 0) first = std::max<int64_t>(first, t - p.window + 1);
    return first;
  }
};

// A (rows, head_dim) slice with row stride ld, as a B operand: itself when head_dim is a multiple of kPad (loads of
// hdp columns stay inside the row), else copied into `scratch` with rows of hdp floats, zero padded.
const float* RowsAsB(const Shape& s, const float* src, int64_t ld, int64_t rows, std::vector<float>& scratch,
                     int64_t* ldb) {
  if (s.hd() % kPad == 0) {
    *ldb = ld;
    return src;
  }
  const int64_t hdp = s.hdp();
  scratch.assign(static_cast<size_t>(rows * hdp), 0.0f);
  for (int64_t r = 0; r < rows; ++r) std::copy_n(src + r * ld, s.hd(), scratch.data() + r * hdp);
  *ldb = hdp;
  return scratch.data();
}

// dst (head_dim, width) = the transpose of rows [0, n) of src (n, head_dim; row stride ld), zero for columns >= n.
void PackTransposed(const float* src, int64_t ld, int64_t n, int64_t hd, int64_t width, float* dst) {
  std::fill(dst, dst + hd * width, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t d = 0; d < hd; ++d) dst[d * width + r] = src[r * ld + d];
  }
}

// a <= b for int32 lanes (Highway 1.0 has no integer Le); the operands here are token indices, far from overflow.
template <class V>
HWY_INLINE auto LeI(V a, V b) {
  return hn::Lt(a, hn::Add(b, hn::Set(DI(), 1)));
}

// Per-lane visibility for a row of a tile: lane i of `lo` / `hi` (int32) bounds the visible coordinate; lanes
// whose lo > hi see nothing.
HWY_INLINE hn::Mask<DF> Visible(const int32_t* lo, const int32_t* hi, int32_t x) {
  const DI di;
  const auto xv = hn::Set(di, x);
  return hn::RebindMask(DF(), hn::And(LeI(hn::LoadU(di, lo), xv), LeI(xv, hn::LoadU(di, hi))));
}

// Soft-capped score s of raw products z (already scaled) and ds/dz; no cap: s = z, ds/dz = 1.
HWY_INLINE hn::Vec<DF> Cap(float cap, hn::Vec<DF> z, hn::Vec<DF>* dsdz) {
  const DF d;
  if (cap <= 0.0f) {
    *dsdz = hn::Set(d, 1.0f);
    return z;
  }
  const auto th = hn::Tanh(d, hn::Mul(z, hn::Set(d, 1.0f / cap)));
  *dsdz = hn::NegMulAdd(th, th, hn::Set(d, 1.0f));
  return hn::Mul(hn::Set(d, cap), th);
}

// Query block qb: rows i < n of [t0, t0 + kQ) with lane bounds lo[i] <= key <= hi[i] (lo = 1 > hi = 0 past n), and
// the key range [kmin, kmax] that any row sees (kmin > kmax: none).
struct QueryBlock {
  int64_t t0, n, kmin, kmax;
  int32_t lo[kQ], hi[kQ];
  QueryBlock(const Shape& s, int64_t qb) : t0(qb * kQ), n(std::min(kQ, s.T - qb * kQ)) {
    kmin = std::numeric_limits<int64_t>::max(), kmax = -1;
    for (int64_t i = 0; i < kQ; ++i) {
      const int64_t t = t0 + i;
      lo[i] = 1, hi[i] = 0;
      if (i >= n || s.lo(t) > t) continue;
      lo[i] = static_cast<int32_t>(s.lo(t)), hi[i] = static_cast<int32_t>(t);
      kmin = std::min<int64_t>(kmin, lo[i]), kmax = std::max<int64_t>(kmax, t);
    }
  }
  // Whether any row sees a key of [j0, j1).
  bool Sees(int64_t j0, int64_t j1) const {
    for (int64_t i = 0; i < n; ++i) {
      if (std::max<int64_t>(lo[i], j0) <= std::min<int64_t>(hi[i], j1 - 1)) return true;
    }
    return false;
  }
};

// Rows of a causal mask cost in proportion to their position, so item i of a parallel loop takes block 0, n-1, 1,
// n-2, ...: the contiguous chunks ThreadPool::ParallelFor hands out get similar loads.
inline int64_t ZigZag(int64_t i, int64_t n) {
  return i % 2 == 0 ? i / 2 : n - 1 - i / 2;
}

template <class Body>
void Run(ThreadPool* pool, int64_t items, const Body& body) {
  if (pool == nullptr) {
    body(size_t{0}, static_cast<size_t>(items));
  } else {
    pool->ParallelFor(static_cast<size_t>(items), body);
  }
}

}  // namespace attn_train

// AttentionTrainForward in f32. One task per (query block, head): scores of the block's keys S^T (keys, kQ) =
// K Q^T, so that the softmax over keys of one query is a column and runs across vector lanes; then O = P V.
void AttentionTrainForwardF32(const AttentionParams& p, const float* q, const float* k, const float* v,
                              int64_t kv_stride, int64_t T, const int32_t* seg_start, float* out, float* lse,
                              ThreadPool* pool) {
  using namespace attn_train;  // NOLINT(build/namespaces): the kernel's own helpers
  const Shape s{p, kv_stride, T, seg_start};
  const int64_t hd = s.hd(), hdp = s.hdp(), qs = s.q_stride();
  const int64_t n_qb = (T + kQ - 1) / kQ;
  const float scale = p.scale;
  Run(pool, n_qb * p.n_head, [&](size_t begin, size_t end) {
    const DF d;
    const size_t N = hn::Lanes(d);
    std::vector<float> qt(static_cast<size_t>(hd * kQ));              // (hd, kQ): Q^T of the block
    std::vector<float> st(static_cast<size_t>(RoundUp(T, kK) * kQ));  // (keys, kQ): S^T, then P^T unnormalized
    std::vector<float> o(static_cast<size_t>(kQ * hdp));              // (kQ, hdp)
    std::vector<float> mx(kQ), vscratch;
    std::vector<double> sum(kQ);
    Span key_cols[kK / 4], query_keys[kQ / 4];  // columns of S^T per 4 keys, keys of O per 4 queries
    for (size_t item = begin; item < end; ++item) {
      const QueryBlock b(s, ZigZag(static_cast<int64_t>(item) / p.n_head, n_qb));
      const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
      const int64_t g = h / s.group();
      PackTransposed(q + b.t0 * qs + h * hd, qs, b.n, hd, kQ, qt.data());
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(o.begin(), o.end(), 0.0f);
      // Scores and their max per query (column); masked entries hold -inf.
      for (int64_t j0 = b.kmin; j0 <= b.kmax; j0 += kK) {
        const int64_t nk = std::min(kK, b.kmax + 1 - j0);
        if (!b.Sees(j0, j0 + nk)) continue;
        float* sb = st.data() + (j0 - b.kmin) * kQ;
        CoverSpans(nk, j0, b.lo, b.hi, kQ, key_cols);
        Gemm(nk, kQ, hd, k + j0 * kv_stride + g * hd, kv_stride, 1, qt.data(), kQ, sb, kQ, false, key_cols);
        for (int64_t j = 0; j < nk; ++j) {
          for (size_t i = 0; i < static_cast<size_t>(kQ); i += N) {
            float* x = sb + j * kQ + static_cast<int64_t>(i);
            hn::Vec<DF> unused;
            auto sc = Cap(p.softcap, hn::Mul(hn::LoadU(d, x), hn::Set(d, scale)), &unused);
            sc = hn::IfThenElse(Visible(b.lo + i, b.hi + i, static_cast<int32_t>(j0 + j)), sc,
                                hn::Set(d, -std::numeric_limits<float>::infinity()));
            hn::StoreU(sc, d, x);
            hn::StoreU(hn::Max(hn::LoadU(d, mx.data() + i), sc), d, mx.data() + i);
          }
        }
      }
      // P^T = exp(S^T - max) (0 where masked), column sums in double as the scalar softmax does, O += P^T^T V.
      for (int64_t j0 = b.kmin; j0 <= b.kmax; j0 += kK) {
        const int64_t nk = std::min(kK, b.kmax + 1 - j0);
        if (!b.Sees(j0, j0 + nk)) continue;
        float* sb = st.data() + (j0 - b.kmin) * kQ;
        for (int64_t j = 0; j < nk; ++j) {
          float* x = sb + j * kQ;
          for (size_t i = 0; i < static_cast<size_t>(kQ); i += N) {
            const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), hn::LoadU(d, mx.data() + i)));
            hn::StoreU(hn::IfThenElseZero(Visible(b.lo + i, b.hi + i, static_cast<int32_t>(j0 + j)), e), d, x + i);
          }
          for (int64_t i = 0; i < kQ; ++i) sum[static_cast<size_t>(i)] += x[i];
        }
        int64_t ldv;
        const float* vb = RowsAsB(s, v + j0 * kv_stride + g * hd, kv_stride, nk, vscratch, &ldv);
        UnionSpans(b.n, b.lo, b.hi, j0, nk, query_keys);
        Gemm(b.n, hdp, nk, sb, 1, kQ, vb, ldv, o.data(), hdp, true, nullptr, query_keys);
      }
      for (int64_t i = 0; i < b.n; ++i) {
        const int64_t t = b.t0 + i;
        float* dst = out + t * qs + h * hd;
        const double sm = sum[static_cast<size_t>(i)];
        if (b.lo[i] > b.hi[i] || !(sm > 0)) {
          std::fill(dst, dst + hd, 0.0f);
          lse[t * p.n_head + h] = -std::numeric_limits<float>::infinity();
          continue;
        }
        lse[t * p.n_head + h] = static_cast<float>(static_cast<double>(mx[static_cast<size_t>(i)]) + std::log(sm));
        const auto inv = static_cast<float>(1.0 / sm);
        for (int64_t c = 0; c < hd; ++c) dst[c] = o[static_cast<size_t>(i * hdp + c)] * inv;
      }
    }
  });
}

// AttentionTrainBackward in f32: D, then the dq pass and the dk / dv pass (see the top of the file).
void AttentionTrainBackwardF32(const AttentionParams& p, const float* q, const float* k, const float* v,
                               int64_t kv_stride, int64_t T, const int32_t* seg_start, const float* out,
                               const float* lse, const float* dout, float* dq, float* dk, float* dv, ThreadPool* pool) {
  using namespace attn_train;  // NOLINT(build/namespaces): the kernel's own helpers
  const Shape s{p, kv_stride, T, seg_start};
  const int64_t hd = s.hd(), hdp = s.hdp(), qs = s.q_stride();
  const float scale = p.scale;
  const int group = s.group();

  // D[t, h] = dout[t, h] . out[t, h]   (T, n_head), each a chain of MulAdd over head_dim in increasing order: the
  // very operations of the dP products (in 1-lane vectors, so fused exactly when the target's MulAdd is), so that
  // dP - D is exactly 0 when out[t, h] is a single key's v (a query that sees one key has no score gradient; the
  // scalar reference gets the same from its shared Dot). Four heads at a time hide the MulAdd latency.
  const int64_t n_qb = (T + kQ - 1) / kQ;
  std::vector<float> D(static_cast<size_t>(T * p.n_head));
  Run(pool, T, [&](size_t begin, size_t end) {
    const hn::CappedTag<float, 1> d1;
    for (auto t = static_cast<int64_t>(begin); t < static_cast<int64_t>(end); ++t) {
      const float* a = dout + t * qs;
      const float* o = out + t * qs;
      float* dst = D.data() + t * p.n_head;
      int64_t h = 0;
      for (; h + 4 <= p.n_head; h += 4) {
        auto s0 = hn::Zero(d1), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t c = h * hd; c < (h + 1) * hd; ++c) {
          s0 = hn::MulAdd(hn::Set(d1, a[c]), hn::Set(d1, o[c]), s0);
          s1 = hn::MulAdd(hn::Set(d1, a[c + hd]), hn::Set(d1, o[c + hd]), s1);
          s2 = hn::MulAdd(hn::Set(d1, a[c + 2 * hd]), hn::Set(d1, o[c + 2 * hd]), s2);
          s3 = hn::MulAdd(hn::Set(d1, a[c + 3 * hd]), hn::Set(d1, o[c + 3 * hd]), s3);
        }
        dst[h] = hn::GetLane(s0), dst[h + 1] = hn::GetLane(s1), dst[h + 2] = hn::GetLane(s2);
        dst[h + 3] = hn::GetLane(s3);
      }
      for (; h < p.n_head; ++h) {
        auto s0 = hn::Zero(d1);
        for (int64_t c = h * hd; c < (h + 1) * hd; ++c) s0 = hn::MulAdd(hn::Set(d1, a[c]), hn::Set(d1, o[c]), s0);
        dst[h] = hn::GetLane(s0);
      }
    }
  });

  // dq: one task per (query block, head); per key block S^T = K Q^T and dP^T = V dO^T (keys, kQ), dS^T in place of
  // S^T, then dQ (kQ, hdp) += dS K.
  Run(pool, n_qb * p.n_head, [&](size_t begin, size_t end) {
    const DF d;
    const size_t N = hn::Lanes(d);
    std::vector<float> qt(static_cast<size_t>(hd * kQ)), dot(static_cast<size_t>(hd * kQ));  // (hd, kQ)
    std::vector<float> st(static_cast<size_t>(kK * kQ)), dpt(static_cast<size_t>(kK * kQ));  // (kK, kQ)
    std::vector<float> acc(static_cast<size_t>(kQ * hdp));                                   // (kQ, hdp)
    std::vector<float> lse_b(kQ), d_b(kQ), kscratch;
    Span key_cols[kK / 4], query_keys[kQ / 4];  // columns of S^T / dP^T per 4 keys, keys of dQ per 4 queries
    for (size_t item = begin; item < end; ++item) {
      const QueryBlock b(s, ZigZag(static_cast<int64_t>(item) / p.n_head, n_qb));
      const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
      const int64_t g = h / group;
      PackTransposed(q + b.t0 * qs + h * hd, qs, b.n, hd, kQ, qt.data());
      PackTransposed(dout + b.t0 * qs + h * hd, qs, b.n, hd, kQ, dot.data());
      for (int64_t i = 0; i < kQ; ++i) {
        const bool row = i < b.n && b.lo[i] <= b.hi[i];
        lse_b[static_cast<size_t>(i)] = row ? lse[(b.t0 + i) * p.n_head + h] : 0.0f;
        d_b[static_cast<size_t>(i)] = row ? D[static_cast<size_t>((b.t0 + i) * p.n_head + h)] : 0.0f;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j0 = b.kmin; j0 <= b.kmax; j0 += kK) {
        const int64_t nk = std::min(kK, b.kmax + 1 - j0);
        if (!b.Sees(j0, j0 + nk)) continue;
        const float* kb = k + j0 * kv_stride + g * hd;
        CoverSpans(nk, j0, b.lo, b.hi, kQ, key_cols);
        Gemm(nk, kQ, hd, kb, kv_stride, 1, qt.data(), kQ, st.data(), kQ, false, key_cols);
        Gemm(nk, kQ, hd, v + j0 * kv_stride + g * hd, kv_stride, 1, dot.data(), kQ, dpt.data(), kQ, false, key_cols);
        for (int64_t j = 0; j < nk; ++j) {
          for (size_t i = 0; i < static_cast<size_t>(kQ); i += N) {
            float* x = st.data() + j * kQ + static_cast<int64_t>(i);
            hn::Vec<DF> dsdz;
            const auto sc = Cap(p.softcap, hn::Mul(hn::LoadU(d, x), hn::Set(d, scale)), &dsdz);
            const auto vis = Visible(b.lo + i, b.hi + i, static_cast<int32_t>(j0 + j));
            const auto P = hn::IfThenElseZero(vis, hn::Exp(d, hn::Sub(sc, hn::LoadU(d, lse_b.data() + i))));
            const auto dP =
                hn::Sub(hn::LoadU(d, dpt.data() + j * kQ + static_cast<int64_t>(i)), hn::LoadU(d, d_b.data() + i));
            // Masked again: entries outside key_cols hold stale values, dP included.
            hn::StoreU(hn::IfThenElseZero(vis, hn::Mul(hn::Mul(P, dP), hn::Mul(dsdz, hn::Set(d, scale)))), d, x);
          }
        }
        int64_t ldk;
        const float* kbb = RowsAsB(s, kb, kv_stride, nk, kscratch, &ldk);
        UnionSpans(b.n, b.lo, b.hi, j0, nk, query_keys);
        Gemm(b.n, hdp, nk, st.data(), 1, kQ, kbb, ldk, acc.data(), hdp, true, nullptr, query_keys);
      }
      for (int64_t i = 0; i < b.n; ++i) std::copy_n(acc.data() + i * hdp, hd, dq + (b.t0 + i) * qs + h * hd);
    }
  });

  // dk / dv: one task per (key block, KV head); for every chunk of kQ queries that sees the block and every head of
  // the group, S = Q K^T and dP = dO V^T (kQ, kK), P and dS in place, dV (kK, hdp) += P^T dO, dK += dS^T Q.
  const int64_t n_kb = (T + kK - 1) / kK;
  Run(pool, n_kb * p.n_head_kv, [&](size_t begin, size_t end) {
    const DF d;
    const size_t N = hn::Lanes(d);
    std::vector<float> kt(static_cast<size_t>(hd * kK)), vt(static_cast<size_t>(hd * kK));            // (hd, kK)
    std::vector<float> sb(static_cast<size_t>(kQ * kK)), dpb(static_cast<size_t>(kQ * kK));           // (kQ, kK)
    std::vector<float> dk_acc(static_cast<size_t>(kK * hdp)), dv_acc(static_cast<size_t>(kK * hdp));  // (kK, hdp)
    std::vector<int32_t> lo_t(kQ), hi_t(kQ);  // visible key lanes [lo_t, hi_t] of each query row of a chunk
    std::vector<float> qscratch, dscratch;
    Span query_cols[kQ / 4], key_queries[kK / 4];  // keys of S / dP per 4 queries, queries of dK / dV per 4 keys
    int32_t lanes[kK];                             // 0, 1, ..., kK - 1
    for (int32_t j = 0; j < static_cast<int32_t>(kK); ++j) lanes[j] = j;
    for (size_t item = begin; item < end; ++item) {
      const int64_t j0 = ZigZag(static_cast<int64_t>(item) / p.n_head_kv, n_kb) * kK;
      const int64_t g = static_cast<int64_t>(item) % p.n_head_kv;
      const int64_t nk = std::min(kK, T - j0), jmax = j0 + nk - 1;
      PackTransposed(k + j0 * kv_stride + g * hd, kv_stride, nk, hd, kK, kt.data());
      PackTransposed(v + j0 * kv_stride + g * hd, kv_stride, nk, hd, kK, vt.data());
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0f);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0f);
      // Queries past jmax + window - 1 see none of the block.
      const int64_t t_end = p.window > 0 ? std::min(T, jmax + p.window) : T;
      for (int64_t t0 = j0; t0 < t_end; t0 += kQ) {
        const int64_t nq = std::min(kQ, t_end - t0);
        bool any = false;
        for (int64_t i = 0; i < nq; ++i) {
          const int64_t t = t0 + i;
          lo_t[static_cast<size_t>(i)] = static_cast<int32_t>(std::max(s.lo(t), j0) - j0);
          hi_t[static_cast<size_t>(i)] = static_cast<int32_t>(std::min(t, jmax) - j0);
          any = any || lo_t[static_cast<size_t>(i)] <= hi_t[static_cast<size_t>(i)];
        }
        if (!any) continue;
        UnionSpans(nq, lo_t.data(), hi_t.data(), 0, kK, query_cols);
        CoverSpans(nk, 0, lo_t.data(), hi_t.data(), nq, key_queries);
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const float* qb = q + t0 * qs + h * hd;
          const float* db = dout + t0 * qs + h * hd;
          Gemm(nq, kK, hd, qb, qs, 1, kt.data(), kK, sb.data(), kK, false, query_cols);
          Gemm(nq, kK, hd, db, qs, 1, vt.data(), kK, dpb.data(), kK, false, query_cols);
          for (int64_t i = 0; i < nq; ++i) {
            const int64_t t = t0 + i;
            const auto lse_v = hn::Set(d, lse[t * p.n_head + h]);
            const auto d_v = hn::Set(d, D[static_cast<size_t>(t * p.n_head + h)]);
            const DI di;
            const auto lo_v = hn::Set(di, lo_t[static_cast<size_t>(i)]);
            const auto hi_v = hn::Set(di, hi_t[static_cast<size_t>(i)]);
            for (size_t j = 0; j < static_cast<size_t>(kK); j += N) {
              float* x = sb.data() + i * kK + static_cast<int64_t>(j);
              float* y = dpb.data() + i * kK + static_cast<int64_t>(j);
              const auto lane = hn::LoadU(di, lanes + j);
              const auto vis = hn::RebindMask(d, hn::And(LeI(lo_v, lane), LeI(lane, hi_v)));
              hn::Vec<DF> dsdz;
              const auto sc = Cap(p.softcap, hn::Mul(hn::LoadU(d, x), hn::Set(d, scale)), &dsdz);
              const auto P = hn::IfThenElseZero(vis, hn::Exp(d, hn::Sub(sc, lse_v)));
              hn::StoreU(P, d, x);
              const auto dP = hn::Sub(hn::LoadU(d, y), d_v);
              hn::StoreU(hn::IfThenElseZero(vis, hn::Mul(hn::Mul(P, dP), hn::Mul(dsdz, hn::Set(d, scale)))), d, y);
            }
          }
          int64_t ldd, ldq;
          const float* dbb = RowsAsB(s, db, qs, nq, dscratch, &ldd);
          const float* qbb = RowsAsB(s, qb, qs, nq, qscratch, &ldq);
          Gemm(nk, hdp, nq, sb.data(), 1, kK, dbb, ldd, dv_acc.data(), hdp, true, nullptr, key_queries);
          Gemm(nk, hdp, nq, dpb.data(), 1, kK, qbb, ldq, dk_acc.data(), hdp, true, nullptr, key_queries);
        }
      }
      for (int64_t j = 0; j < nk; ++j) {
        std::copy_n(dk_acc.data() + j * hdp, hd, dk + (j0 + j) * kv_stride + g * hd);
        std::copy_n(dv_acc.data() + j * hdp, hd, dv + (j0 + j) * kv_stride + g * hd);
      }
    }
  });
  // Columns of dk / dv rows past the used ones (kv_stride padding).
  const int64_t used = static_cast<int64_t>(p.n_head_kv) * hd;
  for (int64_t j = 0; j < T; ++j) {
    std::fill(dk + j * kv_stride + used, dk + (j + 1) * kv_stride, 0.0f);
    std::fill(dv + j * kv_stride + used, dv + (j + 1) * kv_stride, 0.0f);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#endif  // include guard
