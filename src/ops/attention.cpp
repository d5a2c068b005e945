// Causal GQA attention over the f16 KV cache. The two inner products (q . k_j per key, and the softmax-weighted
// sum of the v_j) are written once with Highway and picked at run time: as scalar loops, the q . k_j sum was one
// dependent add chain per key, which made attention a sizable share of decoding at a few hundred positions.
#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "tensor/half.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Must follow highway.h (per-target code).
#include "ops/half_load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pocketlm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void F16ToF32Row(const uint16_t* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadF16AsF32(df, src + i), df, dst + i);
  for (; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

void F32ToF16Row(const float* HWY_RESTRICT src, size_t n, uint16_t* HWY_RESTRICT dst) {
  size_t i = 0;
#if HWY_TARGET != HWY_SSE4 && HWY_TARGET != HWY_SSSE3 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  // Native conversion (vcvtps2ph, fcvtn), round to nearest even like F32ToF16; the emulated one of the targets
  // without it is not checked against F32ToF16, so they take the scalar loop.
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t N = hn::Lanes(df);
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh, reinterpret_cast<hwy::float16_t*>(dst + i));
  }
#endif
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

// Keys and values as the kernels read them: f16 from the cache, or f32 rows converted once for a GQA group's heads.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadAsF32(DF df, const uint16_t* HWY_RESTRICT p) {
  return LoadF16AsF32(df, p);
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadAsF32(DF df, const float* HWY_RESTRICT p) {
  return hn::LoadU(df, p);
}
inline float ToF32(uint16_t h) {
  return F16ToF32(h);
}
inline float ToF32(float f) {
  return f;
}

// sum_d a[d] * b[d], n = head_dim: two independent accumulators, scalar tail.
template <class T>
float DotKV(const float* HWY_RESTRICT a, const T* HWY_RESTRICT b, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto s0 = hn::Zero(df), s1 = hn::Zero(df);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), LoadAsF32(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + N), LoadAsF32(df, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(df, a + i), LoadAsF32(df, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * ToF32(b[i]);
  return s;
}

#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
// v[0 .. kN) -> one vector whose lane i is the sum of v[i]'s lanes (kN = the lanes of a vector). Each level adds
// adjacent lanes of two vectors into one (even + odd lanes: the pairs of v[2i] in the lower half, of v[2i + 1] in the
// upper), so kN vectors take kN - 1 adds and 2 (kN - 1) shuffles, where a full horizontal sum per vector takes
// log2(kN) of each and an extract.
template <class DF>
HWY_INLINE hn::Vec<DF> SumLanesOfEach(DF df, hn::Vec<DF>* v) {
  for (size_t width = hn::MaxLanes(df); width > 1; width /= 2) {
    for (size_t i = 0; i < width / 2; ++i) {
      v[i] = hn::Add(hn::ConcatEven(df, v[2 * i + 1], v[2 * i]), hn::ConcatOdd(df, v[2 * i + 1], v[2 * i]));
    }
  }
  return v[0];
}
#endif

// s[j] = scale * dot(q, k_j) for j in [0, count), k_j = k + j * k_stride, n = head_dim. Keys in groups of
// as many as a vector has lanes, whose dot products are reduced together (SumLanesOfEach): one horizontal sum per
// key made decode attention compute-bound (~32 GFLOP/s). Scalable (SVE) vectors cannot be array elements and take
// DotKV per key.
template <class T>
void Scores(const float* HWY_RESTRICT q, const T* HWY_RESTRICT k, int64_t k_stride, int64_t count, size_t n,
            float scale, float* HWY_RESTRICT s) {
  int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
  const hn::ScalableTag<float> df;
  constexpr size_t kN = hn::MaxLanes(df);
  if (n % kN == 0) {
    for (; j + static_cast<int64_t>(kN) <= count; j += static_cast<int64_t>(kN)) {
      hn::Vec<decltype(df)> v[kN];
      for (size_t i = 0; i < kN; ++i) {
        const T* kj = k + (j + static_cast<int64_t>(i)) * k_stride;
        auto a = hn::Mul(hn::LoadU(df, q), LoadAsF32(df, kj));
        for (size_t d = kN; d < n; d += kN) a = hn::MulAdd(hn::LoadU(df, q + d), LoadAsF32(df, kj + d), a);
        v[i] = a;
      }
      hn::StoreU(hn::Mul(SumLanesOfEach(df, v), hn::Set(df, scale)), df, s + j);
    }
  }
#endif
  for (; j < count; ++j) s[j] = DotKV(q, k + j * k_stride, n) * scale;
}

// out[d] (+)= sum_j w[j] * v_j[d] for d < n, v_j = v + j * v_stride, j in [0, count) (accumulate: added to out).
// Slices of up to 4 vectors of the output stay in registers over all j (accumulating through memory was a load
// and a store per vector and key).
template <class T>
void WeightedSumT(const float* HWY_RESTRICT w, const T* HWY_RESTRICT v, int64_t v_stride, int64_t count, size_t n,
                  bool accumulate, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const auto start = [&](size_t d) { return accumulate ? hn::LoadU(df, out + d) : hn::Zero(df); };
  size_t d = 0;
  for (; d + 4 * N <= n; d += 4 * N) {
    // Even keys into a*, odd keys into b*: one FMA chain per accumulator and key would wait on the FMA latency.
    auto a0 = start(d), a1 = start(d + N), a2 = start(d + 2 * N), a3 = start(d + 3 * N);
    auto b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
    int64_t j = 0;
    for (; j + 2 <= count; j += 2) {
      const T* vj = v + j * v_stride + d;
      const T* vk = vj + v_stride;
      const auto wj = hn::Set(df, w[j]), wk = hn::Set(df, w[j + 1]);
      a0 = hn::MulAdd(wj, LoadAsF32(df, vj), a0);
      a1 = hn::MulAdd(wj, LoadAsF32(df, vj + N), a1);
      a2 = hn::MulAdd(wj, LoadAsF32(df, vj + 2 * N), a2);
      a3 = hn::MulAdd(wj, LoadAsF32(df, vj + 3 * N), a3);
      b0 = hn::MulAdd(wk, LoadAsF32(df, vk), b0);
      b1 = hn::MulAdd(wk, LoadAsF32(df, vk + N), b1);
      b2 = hn::MulAdd(wk, LoadAsF32(df, vk + 2 * N), b2);
      b3 = hn::MulAdd(wk, LoadAsF32(df, vk + 3 * N), b3);
    }
    if (j < count) {
      const T* vj = v + j * v_stride + d;
      const auto wj = hn::Set(df, w[j]);
      a0 = hn::MulAdd(wj, LoadAsF32(df, vj), a0);
      a1 = hn::MulAdd(wj, LoadAsF32(df, vj + N), a1);
      a2 = hn::MulAdd(wj, LoadAsF32(df, vj + 2 * N), a2);
      a3 = hn::MulAdd(wj, LoadAsF32(df, vj + 3 * N), a3);
    }
    hn::StoreU(hn::Add(a0, b0), df, out + d);
    hn::StoreU(hn::Add(a1, b1), df, out + d + N);
    hn::StoreU(hn::Add(a2, b2), df, out + d + 2 * N);
    hn::StoreU(hn::Add(a3, b3), df, out + d + 3 * N);
  }
  for (; d + N <= n; d += N) {
    auto a = start(d);
    for (int64_t j = 0; j < count; ++j) a = hn::MulAdd(hn::Set(df, w[j]), LoadAsF32(df, v + j * v_stride + d), a);
    hn::StoreU(a, df, out + d);
  }
  for (; d < n; ++d) {
    float a = accumulate ? out[d] : 0.0f;
    for (int64_t j = 0; j < count; ++j) a += w[j] * ToF32(v[j * v_stride + d]);
    out[d] = a;
  }
}

void WeightedSum(const float* HWY_RESTRICT w, const uint16_t* HWY_RESTRICT v, int64_t v_stride, int64_t count, size_t n,
                 bool accumulate, float* HWY_RESTRICT out) {
  WeightedSumT(w, v, v_stride, count, n, accumulate, out);
}

// Keys per chunk in AttentionItems: a chunk of keys (or values) read from L2 for the first head of a group is still
// in L1 for the others (64 keys of head size 64: 8 KB in f16). With the f32 cache, 128 keys (32 KB) were 40%
// slower than 64 (bench/micro/attention_bench, 300 positions); in f16, 64 and 128 measure the same.
constexpr int64_t kKeyChunk = 64;

// Items [begin, end) of (token, head) pairs, item = t * n_head + h (see AttentionForward in attention.h). The heads
// of one token that share a KV head (a GQA group, or the part of one in [begin, end)) go together, chunk by chunk
// of keys: head by head, each key and value row came from L2 once per head (head size 64 x 4 B = 4 lines per row),
// and L2 bandwidth, not arithmetic, bounded decode attention (Qwen2-0.5B shape, 300 keys: ~40 us per layer).
void AttentionItems(const AttentionParams& p, const float* q, int64_t pos0, const uint16_t* k_cache,
                    const uint16_t* v_cache, int64_t kv_stride, float* out, size_t begin, size_t end) {
  const int hd = p.head_dim;
  const int group = p.n_head / p.n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(p.n_head) * hd;
  const int64_t last = pos0 + static_cast<int64_t>((end - 1) / static_cast<size_t>(p.n_head));
  std::vector<float> scores(static_cast<size_t>(group * (last + 1)));  // (heads of the run, positions)
  thread_local std::vector<float> chunk_store;  // (kKeyChunk, hd): a chunk of keys or values in f32
  chunk_store.resize(static_cast<size_t>(kKeyChunk * hd));
  float* chunk = chunk_store.data();
  for (size_t item = begin; item < end;) {
    const int64_t t = static_cast<int64_t>(item) / p.n_head;
    const int h0 = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
    const int kvh = h0 / group;
    // The run: heads h0 .. h1 - 1 of token t, all reading KV head kvh.
    const int h1 = static_cast<int>(std::min<int64_t>((kvh + 1) * group, h0 + static_cast<int64_t>(end - item)));
    const int64_t pos = pos0 + t;
    const int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
    const int64_t n_keys = pos - first + 1;
    const uint16_t* k_head = k_cache + first * kv_stride + static_cast<int64_t>(kvh) * hd;
    const uint16_t* v_head = v_cache + first * kv_stride + static_cast<int64_t>(kvh) * hd;
    // A run of several heads converts each chunk of keys (values) to f32 once for all of them: the f16 conversion
    // per head and key shared the shuffle port with the score reduction.
    const bool shared = h1 - h0 > 1;
    const size_t row = static_cast<size_t>(hd);
    for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyChunk) {
      const int64_t j1 = std::min(n_keys, j0 + kKeyChunk);
      if (shared) {
        for (int64_t j = j0; j < j1; ++j) F16ToF32Row(k_head + j * kv_stride, row, chunk + (j - j0) * hd);
      }
      for (int h = h0; h < h1; ++h) {
        const float* qh = q + t * q_stride + static_cast<int64_t>(h) * hd;
        float* s = scores.data() + static_cast<size_t>(h - h0) * static_cast<size_t>(n_keys);
        if (shared) {
          Scores(qh, chunk, hd, j1 - j0, row, p.scale, s + j0);
        } else {
          Scores(qh, k_head + j0 * kv_stride, kv_stride, j1 - j0, row, p.scale, s + j0);
        }
        if (p.softcap > 0) {
          for (int64_t j = j0; j < j1; ++j) s[j] = p.softcap * std::tanh(s[j] / p.softcap);
        }
      }
    }
    for (int h = h0; h < h1; ++h)
      Softmax(scores.data() + static_cast<size_t>(h - h0) * static_cast<size_t>(n_keys), n_keys);
    for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyChunk) {
      const int64_t j1 = std::min(n_keys, j0 + kKeyChunk);
      if (shared) {
        for (int64_t j = j0; j < j1; ++j) F16ToF32Row(v_head + j * kv_stride, row, chunk + (j - j0) * hd);
      }
      for (int h = h0; h < h1; ++h) {
        const float* w = scores.data() + static_cast<size_t>(h - h0) * static_cast<size_t>(n_keys) + j0;
        float* o = out + t * q_stride + static_cast<int64_t>(h) * hd;
        if (shared) {
          WeightedSumT(w, chunk, hd, j1 - j0, row, /*accumulate=*/j0 > 0, o);
        } else {
          WeightedSumT(w, v_head + j0 * kv_stride, kv_stride, j1 - j0, row, /*accumulate=*/j0 > 0, o);
        }
      }
    }
    item += static_cast<size_t>(h1 - h0);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocketlm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocketlm {

HWY_EXPORT(AttentionItems);
HWY_EXPORT(WeightedSum);
HWY_EXPORT(F16ToF32Row);
HWY_EXPORT(F32ToF16Row);

void F32ToF16Row(const float* src, int64_t n, uint16_t* dst) {
  HWY_DYNAMIC_DISPATCH(F32ToF16Row)(src, static_cast<size_t>(n), dst);
}

namespace {

// Prompts: query tokens in blocks of kPrefillBlock; smaller blocks balance the threads better (later blocks see more
// keys), larger ones waste less of the block's causal triangle.
constexpr int64_t kPrefillBlock = 16;

// Query tokens [t0, t1) of a prompt. Per KV head, the scores of the block's queries (its tokens x the heads of the
// group) against keys [0, pos0 + t1) are one f32 matrix product (MatMulWeightsTRows: the panel GEMM, keys in vector
// lanes), instead of one dot product and horizontal sum per (query, key), which made attention ~20% of a
// 256-token q4_0 prefill. Scores past a query's own position are computed and ignored (the block's triangle).
void PrefillBlock(const AttentionParams& p, const float* q, int64_t t0, int64_t t1, int64_t pos0,
                  const uint16_t* k_cache, const uint16_t* v_cache, int64_t kv_stride, float* out) {
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
      HWY_DYNAMIC_DISPATCH(F16ToF32Row)
      (k_cache + j * kv_stride + g * hd, static_cast<size_t>(hd), keys.data() + j * hd);
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
       /*accumulate=*/false, out + t * q_stride + h * hd);
    }
  }
}

}  // namespace

void AttentionForward(const AttentionParams& p, const float* q, int64_t n_tokens, int64_t pos0, const uint16_t* k_cache,
                      const uint16_t* v_cache, int64_t kv_stride, float* out, ThreadPool* pool) {
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
