// Causal GQA attention over the KV cache. The two inner products (q . k_j per key, and the softmax-weighted sum
// of the v_j) are written once with Highway and picked at run time: as scalar loops, the q . k_j sum was one
// dependent add chain per key, which made attention a sizable share of decoding at a few hundred positions.
#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/elementwise.h"
#include "ops/matmul.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sum_d a[d] * b[d], n = head_dim: two independent accumulators, scalar tail.
float DotF32(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto s0 = hn::Zero(df), s1 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out[d] = sum_j w[j] * v_j[d] for d < n, v_j = v + j * v_stride, j in [0, count). Slices of up to 4 vectors of
// the output stay in registers over all j (accumulating through memory was a load and a store per vector and key).
void WeightedSum(const float* HWY_RESTRICT w, const float* HWY_RESTRICT v, int64_t v_stride, int64_t count, size_t n,
                 float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t d = 0;
  for (; d + 4 * N <= n; d += 4 * N) {
    auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    for (int64_t j = 0; j < count; ++j) {
      const float* vj = v + j * v_stride + d;
      const auto wj = hn::Set(df, w[j]);
      a0 = hn::MulAdd(wj, hn::LoadU(df, vj), a0);
      a1 = hn::MulAdd(wj, hn::LoadU(df, vj + N), a1);
      a2 = hn::MulAdd(wj, hn::LoadU(df, vj + 2 * N), a2);
      a3 = hn::MulAdd(wj, hn::LoadU(df, vj + 3 * N), a3);
    }
    hn::StoreU(a0, df, out + d);
    hn::StoreU(a1, df, out + d + N);
    hn::StoreU(a2, df, out + d + 2 * N);
    hn::StoreU(a3, df, out + d + 3 * N);
  }
  for (; d + N <= n; d += N) {
    auto a = hn::Zero(df);
    for (int64_t j = 0; j < count; ++j) a = hn::MulAdd(hn::Set(df, w[j]), hn::LoadU(df, v + j * v_stride + d), a);
    hn::StoreU(a, df, out + d);
  }
  for (; d < n; ++d) {
    float a = 0.0f;
    for (int64_t j = 0; j < count; ++j) a += w[j] * v[j * v_stride + d];
    out[d] = a;
  }
}

// Items [begin, end) of (token, head) pairs, item = t * n_head + h (see AttentionForward in attention.h).
void AttentionItems(const AttentionParams& p, const float* q, int64_t pos0, const float* k_cache, const float* v_cache,
                    int64_t kv_stride, float* out, size_t begin, size_t end) {
  const int hd = p.head_dim;
  const int group = p.n_head / p.n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(p.n_head) * hd;
  const int64_t last = pos0 + static_cast<int64_t>((end - 1) / static_cast<size_t>(p.n_head));
  std::vector<float> scores(static_cast<size_t>(last + 1));  // (positions)
  for (size_t item = begin; item < end; ++item) {
    const int64_t t = static_cast<int64_t>(item) / p.n_head;
    const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
    const int kvh = h / group;
    const int64_t pos = pos0 + t;
    const int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
    const float* qh = q + t * q_stride + static_cast<int64_t>(h) * hd;
    for (int64_t j = first; j <= pos; ++j) {
      const float* kj = k_cache + j * kv_stride + static_cast<int64_t>(kvh) * hd;
      float s = DotF32(qh, kj, static_cast<size_t>(hd)) * p.scale;
      if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
      scores[static_cast<size_t>(j)] = s;
    }
    Softmax(scores.data() + first, pos - first + 1);
    WeightedSum(scores.data() + first, v_cache + first * kv_stride + static_cast<int64_t>(kvh) * hd, kv_stride,
                pos - first + 1, static_cast<size_t>(hd), out + t * q_stride + static_cast<int64_t>(h) * hd);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(AttentionItems);
HWY_EXPORT(WeightedSum);

namespace {

// Prompts: query tokens in blocks of kPrefillBlock; smaller blocks balance the threads better (later blocks see more
// keys), larger ones waste less of the block's causal triangle.
constexpr int64_t kPrefillBlock = 16;

// Query tokens [t0, t1) of a prompt. Per KV head, the scores of the block's queries (its tokens x the heads of the
// group) against keys [0, pos0 + t1) are one f32 matrix product (MatMulWeightsTRows: the panel GEMM, keys in vector
// lanes), instead of one dot product and horizontal sum per (query, key), which made attention ~20% of a
// 256-token q4_0 prefill. Scores past a query's own position are computed and ignored (the block's triangle).
void PrefillBlock(const AttentionParams& p, const float* q, int64_t t0, int64_t t1, int64_t pos0, const float* k_cache,
                  const float* v_cache, int64_t kv_stride, float* out) {
  const int64_t hd = p.head_dim, group = p.n_head / p.n_head_kv;
  const int64_t q_stride = p.n_head * hd;
  const int64_t n_keys = pos0 + t1;
  const int64_t nq = (t1 - t0) * group;  // query rows: (token, head of the group)
  thread_local std::vector<float> keys, queries, scores;
  keys.resize(static_cast<size_t>(n_keys * hd));    // (n_keys, hd): the KV head's keys, contiguous
  queries.resize(static_cast<size_t>(nq * hd));     // (nq, hd)
  scores.resize(static_cast<size_t>(nq * n_keys));  // (nq, n_keys)
  for (int64_t g = 0; g < p.n_head_kv; ++g) {
    for (int64_t j = 0; j < n_keys; ++j) {
      std::memcpy(keys.data() + j * hd, k_cache + j * kv_stride + g * hd, static_cast<size_t>(hd) * sizeof(float));
    }
    for (int64_t t = t0; t < t1; ++t) {
      std::memcpy(queries.data() + (t - t0) * group * hd, q + t * q_stride + g * group * hd,
                  static_cast<size_t>(group * hd) * sizeof(float));
    }
    TensorView kv;
    kv.type = DType::kF32;
    kv.ne[0] = hd;
    kv.ne[1] = n_keys;
    kv.data = reinterpret_cast<const uint8_t*>(keys.data());
    kv.nbytes = keys.size() * sizeof(float);
    MatMulWeightsTRows(kv, queries.data(), nq, scores.data(), n_keys, /*accumulate=*/false, 0, n_keys);
    for (int64_t row = 0; row < nq; ++row) {
      const int64_t t = t0 + row / group, h = g * group + row % group;
      const int64_t pos = pos0 + t;
      const int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
      float* s = scores.data() + row * n_keys;
      for (int64_t j = first; j <= pos; ++j) {
        s[j] *= p.scale;
        if (p.softcap > 0) s[j] = p.softcap * std::tanh(s[j] / p.softcap);
      }
      Softmax(s + first, pos - first + 1);
      HWY_DYNAMIC_DISPATCH(WeightedSum)
      (s + first, v_cache + first * kv_stride + g * hd, kv_stride, pos - first + 1, static_cast<size_t>(hd),
       out + t * q_stride + h * hd);
    }
  }
}

}  // namespace

void AttentionForward(const AttentionParams& p, const float* q, int64_t n_tokens, int64_t pos0, const float* k_cache,
                      const float* v_cache, int64_t kv_stride, float* out, ThreadPool* pool) {
  auto body = [&](size_t begin, size_t end) {
    HWY_DYNAMIC_DISPATCH(AttentionItems)(p, q, pos0, k_cache, v_cache, kv_stride, out, begin, end);
  };
  const auto items = static_cast<size_t>(n_tokens * p.n_head);
  if (items == 0) return;
  if (n_tokens >= 2 * kPrefillBlock) {
    // Blocks claimed last first (they see the most keys), so the threads finish together.
    const int64_t n_blocks = (n_tokens + kPrefillBlock - 1) / kPrefillBlock;
    std::atomic<int64_t> next{0};
    const auto blocks = [&](size_t, size_t) {
      for (int64_t b = next.fetch_add(1, std::memory_order_relaxed); b < n_blocks;
           b = next.fetch_add(1, std::memory_order_relaxed)) {
        const int64_t t0 = (n_blocks - 1 - b) * kPrefillBlock;
        PrefillBlock(p, q, t0, std::min(n_tokens, t0 + kPrefillBlock), pos0, k_cache, v_cache, kv_stride, out);
      }
    };
    if (pool == nullptr) {
      blocks(0, 1);
    } else {
      pool->ParallelFor(static_cast<size_t>(pool->size()), blocks);
    }
    return;
  }
  if (pool == nullptr) {
    body(0, items);
  } else {
    pool->ParallelFor(items, body);
  }
}

}  // namespace pocketlm
#endif
