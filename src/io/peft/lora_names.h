// Where a LoRA target lives in each format, and the one layout change between them.
//
// Names follow llama.cpp's converter (convert_hf_to_gguf.py with gguf-py/gguf/tensor_mapping.py):
//   model.layers.{i}.self_attn.q_proj / k_proj / v_proj / o_proj  <->  blk.{i}.attn_q / attn_k / attn_v / attn_output
//   model.layers.{i}.mlp.gate_proj / up_proj / down_proj          <->  blk.{i}.ffn_gate / ffn_up / ffn_down
//   Phi-3 (fused):  self_attn.qkv_proj <-> attn_qkv,  mlp.gate_up_proj <-> ffn_up
// PEFT prefixes its module names with "base_model.model." and stores lora_A as (r, in) and lora_B as (out, r),
// row-major: byte for byte the ggml layouts ne = [n_in, r] and ne = [r, n_out] of "<tensor>.lora_a" / ".lora_b".
//
// Llama's q and k: Hugging Face checkpoints pair RoPE dimensions i and i + d/2 of each head (rotate-half), GGUF
// "llama" pairs 2i and 2i + 1, so the converter reorders the output rows of q_proj (with n_head) and k_proj (with
// n_head_kv) - LlamaModel.permute in convert_hf_to_gguf.py:
//   w.reshape(n_head, 2, d / 2, n_in).swapaxes(1, 2).reshape(w.shape)
// i.e. GGUF row h*d + 2i + j = HF row h*d + j*d/2 + i. For a LoRA pair only B's rows move (B A's rows are B's rows);
// convert_lora_to_gguf.py's LoraTorchTensor.permute does exactly that. qwen2, phi3 and gemma2 keep HF's order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace pocketlm {

// "llama, qwen2, phi3, gemma2": the architectures whose LoRA targets convert.
std::string LoraConvertibleArchitectures();

// "model.layers.3.self_attn.q_proj" (PEFT module, without "base_model.model.") -> "blk.3.attn_q.weight".
Result<std::string> PeftModuleToGgufTensor(std::string_view arch, std::string_view module);
// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj".
Result<std::string> GgufTensorToPeftModule(std::string_view arch, std::string_view tensor);

// Orders targets as llama.cpp writes them: by layer, then q, k, v, output, gate, up, down (-1 when unknown).
int64_t LoraTargetSortKey(std::string_view arch, std::string_view gguf_tensor);

// Which heads count applies when llama.cpp permutes this GGUF tensor's rows: 'q' (n_head), 'k' (n_head_kv), or 0
// when its rows keep their order.
char RopePermutationOf(std::string_view arch, std::string_view gguf_tensor);

// Reorders n_rows rows of row_bytes each between HF order and GGUF order (see above): forward (HF -> GGUF) when
// `to_gguf`, the inverse otherwise. n_rows must be a multiple of 2 * n_head; src and dst must not overlap.
Status PermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, int64_t n_head,
                       bool to_gguf);

}  // namespace pocketlm
