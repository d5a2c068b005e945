// Row-wise kernels of the transformer block. All operate in place or out of place on f32 rows of `n` values.
// These are simple loops the compiler vectorizes; they are a small share of the time next to matmul.
#pragma once

#include <cstdint>

namespace pocketlm {

// y = x / sqrt(mean(x^2) + eps) * w        (RMSNorm, Zhang & Sennrich 2019). w may be null (no gain).
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y);

enum class RopeStyle : uint8_t {
  kNormal,  // rotate adjacent pairs (x[2i], x[2i+1]) - Llama (GGML_ROPE_TYPE_NORM)
  kNeox,    // rotate (x[i], x[i + d/2]) - GPT-NeoX, Qwen2, Phi-3, Gemma-2
};

// Rotary position embedding (Su et al. 2021, RoFormer) of one head vector of `head_dim` values in place.
// Only the first `rope_dim` dimensions rotate; pair i turns by pos * base^(-2i/rope_dim) / freq_factors[i]
// (freq_factors: Llama-3 `rope_freqs`, may be null).
void Rope(float* x, int head_dim, int rope_dim, RopeStyle style, int64_t pos, float base, const float* freq_factors);

// Rope in two steps, so that the heads of one position share the angles: cs (rope_dim values) = the cosines then
// the sines of the rope_dim / 2 pair angles at `pos`; RopeWithAngles rotates one head with them. Together they give
// exactly Rope's result.
void RopeAngles(int rope_dim, int64_t pos, float base, const float* freq_factors, float* cs);
void RopeWithAngles(float* x, int rope_dim, RopeStyle style, const float* cs);

// gate[i] = act(gate[i]) * up[i]  (SwiGLU, GeGLU: Shazeer 2020)
void SiluMul(float* gate, const float* up, int64_t n);
void GeluTanhMul(float* gate, const float* up, int64_t n);

// x[i] = cap * tanh(x[i] / cap)   (logit soft-capping, Gemma 2 report)
void SoftCap(float* x, int64_t n, float cap);

void AddInPlace(float* x, const float* y, int64_t n);
void ScaleInPlace(float* x, int64_t n, float s);

// In-place softmax of n values; -inf entries get probability 0.
void Softmax(float* x, int64_t n);

}  // namespace pocketlm
