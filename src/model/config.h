// Hyper-parameters and family switches of a decoder-only transformer. The four supported families differ only
// in the data of this struct; one forward pass reads it (no per-family copies of the block).
#pragma once

#include <string>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "ops/attention.h"
#include "ops/elementwise.h"

namespace pocketlm {

enum class Activation : uint8_t { kSilu, kGeluTanh };

// Which layers use sliding-window attention.
enum class SlidingPattern : uint8_t {
  kNone,
  kAllLayers,   // Phi-3 (`sliding_window` applies everywhere)
  kEvenLayers,  // Gemma-2: layers 0, 2, 4, ... are local, odd layers global
};

struct ModelConfig {
  std::string arch;  // general.architecture
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // `key_length` when present, else n_embd / n_head
  int n_ff = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  int rope_dim = 0;  // rotated dimensions per head (`rope.dimension_count`, default head_dim)
  RopeStyle rope_style = RopeStyle::kNormal;
  Activation activation = Activation::kSilu;
  bool post_norms = false;     // Gemma-2: RMSNorm after attention and after the FFN, before the residual add
  float embd_scale = 1.0f;     // Gemma-2: sqrt(n_embd)
  float attn_scale = 1.0f;     // multiplies q.k; 1/sqrt(head_dim)
  float attn_softcap = 0.0f;   // Gemma-2 attention logit soft-capping (0 = off)
  float final_softcap = 0.0f;  // Gemma-2 final logit soft-capping (0 = off)
  int sliding_window = 0;
  SlidingPattern sliding_pattern = SlidingPattern::kNone;

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
  bool IsSlidingLayer(int layer) const {
    if (sliding_window <= 0) return false;
    switch (sliding_pattern) {
      case SlidingPattern::kAllLayers: return true;
      case SlidingPattern::kEvenLayers: return layer % 2 == 0;
      default: return false;
    }
  }
};

// The attention kernel's parameters for one layer (its sliding window, if any).
inline AttentionParams AttentionParamsFor(const ModelConfig& c, int layer) {
  AttentionParams p;
  p.n_head = c.n_head;
  p.n_head_kv = c.n_head_kv;
  p.head_dim = c.head_dim;
  p.scale = c.attn_scale;
  p.softcap = c.attn_softcap;
  p.window = c.IsSlidingLayer(layer) ? c.sliding_window : 0;
  return p;
}

// Reads the config from GGUF metadata, checking every value for sanity. n_vocab comes from the token list.
Result<ModelConfig> ReadModelConfig(const GgufFile& f);

// The architectures ReadModelConfig accepts, for error messages: "llama, qwen2, phi3, gemma2".
std::string SupportedArchitectures();

}  // namespace pocketlm
