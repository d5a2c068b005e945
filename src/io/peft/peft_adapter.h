// Conversion between Hugging Face PEFT LoRA adapters (a directory with adapter_config.json and
// adapter_model.safetensors) and llama.cpp's GGUF LoRA adapters (general.type = adapter, adapter.type = lora,
// adapter.lora.alpha, general.architecture; tensors "<base tensor>.lora_a" with ne = [n_in, r] and ".lora_b" with
// ne = [r, n_out]). Both sides meet in LoraAdapterData, which holds the GGUF convention: GGUF names, llama q/k
// rows in GGUF order (lora_names.h), and the alpha llama.cpp applies as alpha / r.
//
// alpha: PEFT scales B A by lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; GGUF by alpha / r. So
// PEFT -> GGUF writes lora_alpha * sqrt(r) for an rsLoRA adapter, and GGUF -> PEFT writes alpha with use_rslora
// false. (llama.cpp's convert_lora_to_gguf.py copies lora_alpha unchanged and ignores use_rslora, so its output
// for an rsLoRA adapter is scaled by 1/sqrt(r) too little; ours reproduces PEFT's scale.) A GGUF adapter without
// alpha (or alpha 0) is applied by llama.cpp at scale 1, i.e. PEFT lora_alpha = r.
//
// Tensor values are moved, not converted: F32, F16 and BF16 keep their type in both directions, so a round trip
// reproduces every tensor bit for bit.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "io/peft/peft_config.h"
#include "io/safetensors/safetensors_reader.h"
#include "tensor/dtype.h"

namespace pocketlm {

struct LoraPairData {
  std::string target;  // GGUF base tensor, "blk.3.attn_q.weight"
  int64_t rank = 0;
  int64_t n_in = 0;
  int64_t n_out = 0;
  DType type_a = DType::kF32;  // F32, F16 or BF16
  DType type_b = DType::kF32;
  std::vector<uint8_t> a;  // (rank, n_in) row-major
  std::vector<uint8_t> b;  // (n_out, rank) row-major; llama q/k rows in GGUF order
};

struct LoraAdapterData {
  std::string arch;
  float alpha = 0.0f;  // GGUF convention (applied as alpha / rank); 0 = scale 1
  std::vector<LoraPairData> pairs;
};

// A PEFT adapter directory, validated without a base model: the config, the weights, and every lora_A / lora_B
// pair (same rank r as the config, 2-D, F32 / F16 / BF16).
struct PeftAdapter {
  struct Pair {
    std::string module;           // "model.layers.0.self_attn.q_proj" ("base_model.model." removed)
    const StTensor* a = nullptr;  // (r, in), points into `weights`
    const StTensor* b = nullptr;  // (out, r)
  };
  std::string dir;
  PeftLoraConfig config;
  SafetensorsFile weights;
  std::vector<Pair> pairs;  // in the order of the weights file
};

inline constexpr const char* kPeftConfigFile = "adapter_config.json";
inline constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";

Result<PeftAdapter> OpenPeftAdapter(const std::string& dir);

// PEFT -> GGUF convention. The base model gives the architecture, the head counts for llama's q/k reordering, and
// the shapes every target must match.
Result<LoraAdapterData> PeftToLora(const PeftAdapter& peft, const GgufFile& base);

// Reads a GGUF LoRA adapter (the checks of LoraAdapter::Load, plus F32 / F16 / BF16 only).
Result<LoraAdapterData> ReadGgufLora(const GgufFile& adapter);

// Architecture, and for every pair: the base tensor exists, is 2-D and maps n_in -> n_out.
Status CheckLoraAgainstBase(const LoraAdapterData& lora, const GgufFile& base);

// Writes the GGUF adapter atomically.
Status WriteGgufLora(const LoraAdapterData& lora, const std::string& path);

// Writes adapter_model.safetensors and adapter_config.json into `dir` (created if missing; each file atomically).
// `base` gives the head counts a llama adapter on attn_q / attn_k needs (an error without it) and, when given, is
// checked against; `base_name` becomes base_model_name_or_path (null when empty). Every pair must have one rank:
// per-module ranks would need PEFT's rank_pattern, not supported yet.
Status WritePeftAdapter(const LoraAdapterData& lora, const GgufFile* base, const std::string& dir,
                        const std::string& base_name);

}  // namespace pocketlm
