// Small random-weight models and LoRA adapters written with pocketlm's own GGUF writer, so that anything needing
// "a model" (the demo, from-scratch training, tests that check behaviour rather than llama.cpp's numbers) runs on
// any machine without downloads. make_random_model and make_random_lora are thin command lines over these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace pocketlm::mkmodel {

// A llama- or qwen2-architecture model. Zeros in the shape fields are derived from n_embd (see WriteRandomModel).
struct RandomModelOptions {
  // "llama", or "qwen2": llama's tensors plus q/k/v biases, NEOX RoPE (src/model/config.cpp), `qwen2.*` keys.
  std::string arch = "llama";
  uint32_t seed = 1;
  int n_layer = 2;
  int n_embd = 64;         // a multiple of 16
  int n_head = 0;          // 0: n_embd / 16
  int n_head_kv = 0;       // 0: n_head / 2 (1 when n_head is 1)
  int n_ff = 0;            // 0: 8/3 n_embd rounded up to 64, so rows fit every quant block size
  int n_ctx = 2048;        // llama.context_length
  double init_std = 0;     // 0: N(0, 1/fan_in) and zero output rows for byte tokens (the demo); else N(0, init_std^2)
  bool f16 = false;        // matrices in f16 (norms stay f32)
  bool tied = false;       // no output.weight: the output projection is the token embedding
  std::string vocab_path;  // empty: the built-in byte-fallback vocabulary (366 tokens); else every tokenizer.* key
  std::string name = "pocketlm random demo model";
};

struct RandomModelSummary {
  int n_vocab = 0, n_head = 0, n_head_kv = 0, n_ff = 0;
  int64_t n_params = 0;        // every weight
  int64_t n_embed_params = 0;  // token embedding and output matrices
};

// Writes the model to `out` (atomically). Same options and seed, same bytes. Invalid shapes are InvalidArgument.
Result<RandomModelSummary> WriteRandomModel(const std::string& out, const RandomModelOptions& o);

// A llama.cpp-format LoRA adapter for a base GGUF (the layout of ../shared/golden's *.lora-*.gguf): A and B drawn from
// N(0, std^2) as f32, `adapter.lora.alpha` = alpha, for every 2-D `blk.<n>.<target>.weight` of the base.
struct RandomLoraOptions {
  uint32_t seed = 1;
  int rank = 8;
  float alpha = 16.0f;  // 0: no alpha key (the effective scale is then the run-time scale alone)
  float std = 0.1f;     // the golden adapters' (tools/mklora.py)
  // Projection names within a block; empty: every attn_* and ffn_* matrix.
  std::vector<std::string> targets;
  // Written as general.architecture; empty: the base's. Another value makes an adapter the base must refuse.
  std::string architecture;
};

struct RandomLoraSummary {
  int n_pairs = 0;
};

Result<RandomLoraSummary> WriteRandomLora(const std::string& base_path, const std::string& out,
                                          const RandomLoraOptions& o);

}  // namespace pocketlm::mkmodel
