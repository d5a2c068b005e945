// Training attention: the f32 entry points run the tiled Highway kernels of attention_train-inl.h (compiled for
// every target of the platform, picked at run time); grad:: keeps the plain loops over a scalar type as the
// reference, for the double-precision gradient checks and as the specification the f32 kernels are tested against.
#include "ops/attention_train.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention_train.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/attention_train-inl.h"

#if HWY_ONCE
namespace pocketlm {
namespace grad {

namespace {

// Dot product with 8 partial sums, so the compiler can vectorize it without reassociating (no fast-math).
template <typename Real>
Real Dot(const Real* a, const Real* b, int n) {
  Real acc[8] = {};
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    for (int u = 0; u < 8; ++u) acc[u] += a[d + u] * b[d + u];
  }
  Real s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; d < n; ++d) s += a[d] * b[d];
  return s;
}

// y += alpha x
template <typename Real>
void Axpy(Real alpha, const Real* x, Real* y, int n) {
  for (int d = 0; d < n; ++d) y[d] += alpha * x[d];
}

// Shape of one call, shared by the forward and both backward passes.
struct Layout {
  const AttentionParams& p;
  int64_t kv_stride;
  int64_t T;
  const int32_t* seg_start;
  int hd() const { return p.head_dim; }
  int group() const { return p.n_head / p.n_head_kv; }
  int64_t q_stride() const { return static_cast<int64_t>(p.n_head) * p.head_dim; }
  int64_t q_off(int64_t t, int h) const { return t * q_stride() + static_cast<int64_t>(h) * p.head_dim; }
  int64_t kv_off(int64_t j, int g) const { return j * kv_stride + static_cast<int64_t>(g) * p.head_dim; }
  // First key token t sees (see the header); > t when it sees none.
  int64_t lo(int64_t t) const {
    int64_t first = 0;
    if (seg_start != nullptr) first = std::max<int64_t>(first, seg_start[t]);
    if (p.window > 0) first = std::max<int64_t>(first, t - p.window + 1);
    return first;
  }
};

// Capped score s and ds/dz for a raw product z = scale * q.k.
template <typename Real>
Real Score(const AttentionParams& p, Real z, Real* dsdz) {
  if (p.softcap <= 0) {
    *dsdz = Real{1};
    return z;
  }
  const auto cap = static_cast<Real>(p.softcap);
  const Real th = std::tanh(z / cap);
  *dsdz = Real{1} - th * th;
  return cap * th;
}

// Rows of a causal mask cost in proportion to t, so item i of a parallel loop takes row 0, T-1, 1, T-2, ...:
// every contiguous chunk of items (ThreadPool::ParallelFor hands out contiguous chunks) gets a similar load.
int64_t ZigZag(int64_t i, int64_t n) {
  return i % 2 == 0 ? i / 2 : n - 1 - i / 2;
}

void Run(ThreadPool* pool, int64_t items, const std::function<void(size_t, size_t)>& body) {
  if (pool == nullptr) {
    body(0, static_cast<size_t>(items));
  } else {
    pool->ParallelFor(static_cast<size_t>(items), body);
  }
}

}  // namespace

template <typename Real>
void AttentionTrainForward(const AttentionParams& p, const Real* q, const Real* k, const Real* v, int64_t kv_stride,
                           int64_t T, const int32_t* seg_start, Real* out, Real* lse, ThreadPool* pool) {
  const Layout L{p, kv_stride, T, seg_start};
  const int hd = L.hd();
  const auto scale = static_cast<Real>(p.scale);
  Run(pool, T * p.n_head, [&](size_t begin, size_t end) {
    std::vector<Real> e(static_cast<size_t>(T));  // scores, then exp(s - max)
    for (size_t item = begin; item < end; ++item) {
      const int64_t t = ZigZag(static_cast<int64_t>(item) / p.n_head, T);
      const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
      const int g = h / L.group();
      const Real* qh = q + L.q_off(t, h);
      Real* oh = out + L.q_off(t, h);
      std::fill(oh, oh + hd, Real{0});
      const int64_t first = L.lo(t);
      if (first > t) {
        lse[t * p.n_head + h] = -std::numeric_limits<Real>::infinity();
        continue;
      }
      Real mx = -std::numeric_limits<Real>::infinity();
      for (int64_t j = first; j <= t; ++j) {
        Real unused;
        const Real s = Score(p, scale * Dot(qh, k + L.kv_off(j, g), hd), &unused);
        e[static_cast<size_t>(j)] = s;
        mx = std::max(mx, s);
      }
      // Softmax as elementwise.cpp's Softmax does it: exp in Real, the sum in double.
      double sum = 0;
      for (int64_t j = first; j <= t; ++j) {
        e[static_cast<size_t>(j)] = std::exp(e[static_cast<size_t>(j)] - mx);
        sum += e[static_cast<size_t>(j)];
      }
      lse[t * p.n_head + h] = static_cast<Real>(static_cast<double>(mx) + std::log(sum));
      const auto inv = static_cast<Real>(1.0 / sum);
      for (int64_t j = first; j <= t; ++j) Axpy(e[static_cast<size_t>(j)] * inv, v + L.kv_off(j, g), oh, hd);
    }
  });
}

template <typename Real>
void AttentionTrainBackward(const AttentionParams& p, const Real* q, const Real* k, const Real* v, int64_t kv_stride,
                            int64_t T, const int32_t* seg_start, const Real* out, const Real* lse, const Real* dout,
                            Real* dq, Real* dk, Real* dv, ThreadPool* pool) {
  const Layout L{p, kv_stride, T, seg_start};
  const int hd = L.hd();
  const int group = L.group();
  const auto scale = static_cast<Real>(p.scale);

  // D[t, h] = dout[t, h] . out[t, h] = sum_j P_j dP_j   (T, n_head)
  std::vector<Real> D(static_cast<size_t>(T * p.n_head));
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < p.n_head; ++h)
      D[static_cast<size_t>(t * p.n_head + h)] = Dot(dout + L.q_off(t, h), out + L.q_off(t, h), hd);
  }

  // dZ for query (t, h) and key j: the gradient at the raw product z = scale * q.k; also returns P through *prob.
  auto dz = [&](const Real* qh, const Real* dh, Real lse_th, Real d_th, int64_t j, int g, Real* prob) {
    Real dsdz;
    const Real s = Score(p, scale * Dot(qh, k + L.kv_off(j, g), hd), &dsdz);
    const Real P = std::exp(s - lse_th);
    *prob = P;
    return P * (Dot(dh, v + L.kv_off(j, g), hd) - d_th) * dsdz;
  };

  // Pass 1, dq: one task per query row and head.
  Run(pool, T * p.n_head, [&](size_t begin, size_t end) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t t = ZigZag(static_cast<int64_t>(item) / p.n_head, T);
      const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
      const int g = h / group;
      Real* dqh = dq + L.q_off(t, h);
      std::fill(dqh, dqh + hd, Real{0});
      const size_t th = static_cast<size_t>(t * p.n_head + h);
      for (int64_t j = L.lo(t); j <= t; ++j) {
        Real P;
        const Real g_z = dz(q + L.q_off(t, h), dout + L.q_off(t, h), lse[th], D[th], j, g, &P);
        Axpy(scale * g_z, k + L.kv_off(j, g), dqh, hd);
      }
    }
  });

  // Pass 2, dk and dv: one task per KV head and block of kBlock keys, summing over every query (and every query
  // head of the group) that sees a key of the block, in increasing order.
  constexpr int64_t kBlock = 16;
  const int64_t n_blocks = (T + kBlock - 1) / kBlock;
  Run(pool, n_blocks * p.n_head_kv, [&](size_t begin, size_t end) {
    std::vector<Real> dk_blk(static_cast<size_t>(kBlock * hd)), dv_blk(static_cast<size_t>(kBlock * hd));
    for (size_t item = begin; item < end; ++item) {
      const int64_t jb = ZigZag(static_cast<int64_t>(item) / p.n_head_kv, n_blocks);
      const int g = static_cast<int>(static_cast<int64_t>(item) % p.n_head_kv);
      const int64_t j0 = jb * kBlock, j1 = std::min(T, j0 + kBlock);
      std::fill(dk_blk.begin(), dk_blk.end(), Real{0});
      std::fill(dv_blk.begin(), dv_blk.end(), Real{0});
      for (int64_t t = j0; t < T; ++t) {
        if (p.window > 0 && t - p.window + 1 > j1 - 1) break;  // later queries are past the window too
        const int64_t jlo = std::max(L.lo(t), j0), jhi = std::min(t, j1 - 1);
        for (int h = g * group; h < (g + 1) * group; ++h) {
          const size_t th = static_cast<size_t>(t * p.n_head + h);
          const Real* qh = q + L.q_off(t, h);
          const Real* dh = dout + L.q_off(t, h);
          for (int64_t j = jlo; j <= jhi; ++j) {
            Real P;
            const Real g_z = dz(qh, dh, lse[th], D[th], j, g, &P);
            Axpy(scale * g_z, qh, dk_blk.data() + (j - j0) * hd, hd);
            Axpy(P, dh, dv_blk.data() + (j - j0) * hd, hd);
          }
        }
      }
      for (int64_t j = j0; j < j1; ++j) {
        std::copy_n(dk_blk.data() + (j - j0) * hd, hd, dk + L.kv_off(j, g));
        std::copy_n(dv_blk.data() + (j - j0) * hd, hd, dv + L.kv_off(j, g));
      }
    }
  });
  // Columns of dk / dv rows past the used ones (kv_stride padding).
  const int64_t used = static_cast<int64_t>(p.n_head_kv) * hd;
  for (int64_t j = 0; j < T; ++j) {
    std::fill(dk + j * kv_stride + used, dk + (j + 1) * kv_stride, Real{0});
    std::fill(dv + j * kv_stride + used, dv + (j + 1) * kv_stride, Real{0});
  }
}

#define PLM_INSTANTIATE(Real)                                                                                        \
  template void AttentionTrainForward<Real>(const AttentionParams&, const Real*, const Real*, const Real*, int64_t,  \
                                            int64_t, const int32_t*, Real*, Real*, ThreadPool*);                     \
  template void AttentionTrainBackward<Real>(const AttentionParams&, const Real*, const Real*, const Real*, int64_t, \
                                             int64_t, const int32_t*, const Real*, const Real*, const Real*, Real*,  \
                                             Real*, Real*, ThreadPool*);
PLM_INSTANTIATE(float)
PLM_INSTANTIATE(double)
#undef PLM_INSTANTIATE

}  // namespace grad

HWY_EXPORT(AttentionTrainForwardF32);
HWY_EXPORT(AttentionTrainBackwardF32);

void AttentionTrainForward(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t kv_stride,
                           int64_t T, const int32_t* seg_start, float* out, float* lse, ThreadPool* pool) {
  if (T <= 0) return;
  HWY_DYNAMIC_DISPATCH(AttentionTrainForwardF32)(p, q, k, v, kv_stride, T, seg_start, out, lse, pool);
}

void AttentionTrainBackward(const AttentionParams& p, const float* q, const float* k, const float* v, int64_t kv_stride,
                            int64_t T, const int32_t* seg_start, const float* out, const float* lse, const float* dout,
                            float* dq, float* dk, float* dv, ThreadPool* pool) {
  if (T <= 0) return;
  HWY_DYNAMIC_DISPATCH(AttentionTrainBackwardF32)
  (p, q, k, v, kv_stride, T, seg_start, out, lse, dout, dq, dk, dv, pool);
}

}  // namespace pocketlm
#endif  // HWY_ONCE
