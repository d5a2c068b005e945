// Named views of a model's tensors inside the mapped GGUF file (llama.cpp tensor names), checked against the
// config's shapes when bound. Optional tensors are empty views.
#pragma once

#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "model/config.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

struct LayerWeights {
  TensorView attn_norm;       // (n_embd) f32
  TensorView wq, wk, wv;      // (n_embd -> q_dim / kv_dim); empty when fused
  TensorView wqkv;            // Phi-3: (n_embd -> q_dim + 2 kv_dim)
  TensorView bq, bk, bv;      // Qwen2 biases, f32, optional
  TensorView wo;              // (q_dim -> n_embd)
  TensorView post_attn_norm;  // Gemma-2
  TensorView ffn_norm;        // (n_embd)
  TensorView w_gate, w_up;    // (n_embd -> n_ff); Phi-3: w_up is (n_embd -> 2 n_ff) = [gate; up], w_gate empty
  TensorView w_down;          // (n_ff -> n_embd)
  TensorView post_ffn_norm;   // Gemma-2
};

struct ModelWeights {
  TensorView tok_embd;     // (n_embd, n_vocab): row v is token v's embedding
  TensorView output_norm;  // (n_embd)
  TensorView output;       // (n_embd -> n_vocab); tok_embd when tied
  TensorView rope_freqs;   // Llama-3 frequency factors (rope_dim / 2), optional
  std::vector<LayerWeights> layers;
};

Result<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c);

// Bytes of weights one decode step reads: every projection of every layer, the norms and the output matrix
// (the embedding contributes one row). Speed x this / memory bandwidth = how close decode is to the limit.
uint64_t DecodeWeightBytes(const ModelWeights& w);

}  // namespace pocketlm
