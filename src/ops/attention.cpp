// Causal GQA attention over the KV cache. The two inner products (q . k_j per key, and the softmax-weighted sum
// of the v_j) are written once with Highway and picked at run time: as scalar loops, the q . k_j sum was one
// dependent add chain per key, which made attention a sizable share of decoding at a few hundred positions.
#include "ops/attention.h"

#include <cmath>
#include <vector>

#include "ops/elementwise.h"

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

// out[d] += w * v[d] for d < n.
void AddScaled(float w, const float* HWY_RESTRICT v, size_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const auto vw = hn::Set(df, w);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(vw, hn::LoadU(df, v + i), hn::LoadU(df, out + i)), df, out + i);
  for (; i < n; ++i) out[i] += w * v[i];
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
    float* oh = out + t * q_stride + static_cast<int64_t>(h) * hd;
    for (int d = 0; d < hd; ++d) oh[d] = 0;
    for (int64_t j = first; j <= pos; ++j) {
      AddScaled(scores[static_cast<size_t>(j)], v_cache + j * kv_stride + static_cast<int64_t>(kvh) * hd,
                static_cast<size_t>(hd), oh);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(AttentionItems);

void AttentionForward(const AttentionParams& p, const float* q, int64_t n_tokens, int64_t pos0, const float* k_cache,
                      const float* v_cache, int64_t kv_stride, float* out, ThreadPool* pool) {
  auto body = [&](size_t begin, size_t end) {
    HWY_DYNAMIC_DISPATCH(AttentionItems)(p, q, pos0, k_cache, v_cache, kv_stride, out, begin, end);
  };
  const auto items = static_cast<size_t>(n_tokens * p.n_head);
  if (items == 0) return;
  if (pool == nullptr) {
    body(0, items);
  } else {
    pool->ParallelFor(items, body);
  }
}

}  // namespace pocketlm
#endif
