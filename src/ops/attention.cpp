#include "ops/attention.h"

#include <cmath>
#include <vector>

#include "ops/elementwise.h"

namespace pocketlm {

void AttentionForward(const AttentionParams& p, const float* q, int64_t n_tokens, int64_t pos0, const float* k_cache,
                      const float* v_cache, int64_t kv_stride, float* out, ThreadPool* pool) {
  const int hd = p.head_dim;
  const int group = p.n_head / p.n_head_kv;
  const int64_t q_stride = static_cast<int64_t>(p.n_head) * hd;
  auto body = [&](size_t begin, size_t end) {
    std::vector<float> scores(static_cast<size_t>(pos0 + n_tokens));
    for (size_t item = begin; item < end; ++item) {
      const int64_t t = static_cast<int64_t>(item) / p.n_head;
      const int h = static_cast<int>(static_cast<int64_t>(item) % p.n_head);
      const int kvh = h / group;
      const int64_t pos = pos0 + t;
      const int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
      const float* qh = q + t * q_stride + static_cast<int64_t>(h) * hd;
      for (int64_t j = first; j <= pos; ++j) {
        const float* kj = k_cache + j * kv_stride + static_cast<int64_t>(kvh) * hd;
        float s = 0;
        for (int d = 0; d < hd; ++d) s += qh[d] * kj[d];
        s *= p.scale;
        if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
        scores[static_cast<size_t>(j)] = s;
      }
      const int64_t n = pos - first + 1;
      Softmax(scores.data() + first, n);
      float* oh = out + t * q_stride + static_cast<int64_t>(h) * hd;
      for (int d = 0; d < hd; ++d) oh[d] = 0;
      for (int64_t j = first; j <= pos; ++j) {
        const float w = scores[static_cast<size_t>(j)];
        const float* vj = v_cache + j * kv_stride + static_cast<int64_t>(kvh) * hd;
        for (int d = 0; d < hd; ++d) oh[d] += w * vj[d];
      }
    }
  };
  const auto items = static_cast<size_t>(n_tokens * p.n_head);
  if (pool == nullptr) {
    body(0, items);
  } else {
    pool->ParallelFor(items, body);
  }
}

}  // namespace pocketlm
