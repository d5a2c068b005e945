// Causal multi-head attention with grouped KV heads (GQA, Ainslie et al. 2023) over a KV cache.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace pocketlm {

struct AttentionParams {
  int n_head = 0;
  int n_head_kv = 0;  // n_head is a multiple of it; query head h reads KV head h / (n_head / n_head_kv)
  int head_dim = 0;
  float scale = 1.0f;    // applied to q.k before soft-capping
  float softcap = 0.0f;  // > 0: scores = softcap * tanh(scores / softcap) (Gemma 2)
  int window = 0;        // > 0: a query at position p sees keys at positions p - window < j <= p only
};

// out[t, h*hd + d] = sum_j softmax_j(score(q[t, h], k[j, kvh])) v[j, kvh*hd + d],  j <= pos0 + t
//   q:       (n_tokens, n_head * head_dim), the query of position pos0 + t in row t
//   k_cache: (>= pos0 + n_tokens, kv_stride) IEEE binary16 bits, row j holds the keys of position j
//            (kv_stride >= n_head_kv*head_dim); f16 as llama.cpp's default cache: half the memory and the reads
//            of f32, which decoding at a few hundred positions and more notices
//   v_cache: same layout as k_cache
//   out:     (n_tokens, n_head * head_dim)
void AttentionForward(const AttentionParams& p, const float* q, int64_t n_tokens, int64_t pos0, const uint16_t* k_cache,
                      const uint16_t* v_cache, int64_t kv_stride, float* out, ThreadPool* pool);

// dst[i] = the f16 nearest src[i] (ties to even, as F32ToF16 in tensor/half.h): a KV cache row.
void F32ToF16Row(const float* src, int64_t n, uint16_t* dst);

}  // namespace pocketlm
