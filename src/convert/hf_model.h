// The four Hugging Face architectures pocketlm converts, as data: config.json <-> GGUF hyper-parameters and the
// tensor correspondence, following llama.cpp's convert_hf_to_gguf.py (LlamaModel, Qwen2Model, Phi3MiniModel,
// Gemma2Model) and gguf-py's tensor_mapping.py. One table drives both directions (import and export).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "convert/json_file.h"
#include "convert/kv_list.h"
#include "io/gguf/gguf_reader.h"

namespace pocketlm::convert {

struct HfDims {
  std::string hf_class;  // "LlamaForCausalLM"
  std::string arch;      // "llama" (general.architecture)
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  bool tied = false;  // tie_word_embeddings: no output.weight
};

// How a tensor's values change between the two formats (import direction; export applies the inverse).
enum class Transform : uint8_t {
  kNone,
  kPermuteQ,  // llama q_proj rows, n_head heads (lora_names.h)
  kPermuteK,  // llama k_proj rows, n_head_kv heads
  kAddOne,    // Gemma RMSNorm weights: HF stores w, applies (1 + w); GGUF stores 1 + w
};

struct TensorMap {
  std::string hf;                 // "model.layers.0.self_attn.q_proj.weight"
  std::string gguf;               // "blk.0.attn_q.weight"
  std::vector<int64_t> hf_shape;  // row-major; GGUF ne is the reverse
  Transform transform = Transform::kNone;
  bool optional = false;  // biases: converted when present
};

// "LlamaForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM"
std::string SupportedHfArchitectures();

// Reads and checks config.json (`where` names the file in errors).
Result<HfDims> ParseHfConfig(const Json& cfg, const std::string& where);
// The architecture's hyper-parameter keys as convert_hf_to_gguf.py writes them, general.file_type included.
Result<KvList> HfConfigToGguf(const Json& cfg, const HfDims& d, uint32_t file_type, const std::string& where);
// Every tensor of the model in GGUF order (extra tensors such as rope_freqs are not included).
std::vector<TensorMap> TensorMaps(const HfDims& d);

// llama3 rope scaling (Llama-3.1/3.2 configs): the rope_freqs.weight factors convert_hf_to_gguf.py generates
// (LlamaModel.generate_extra_tensors), empty when the config has no rope scaling. Other rope scaling types are
// unsupported.
Result<std::vector<float>> HfRopeFreqs(const Json& cfg, const HfDims& d, const std::string& where);

// Export: dimensions from a GGUF model, and a config.json for them.
Result<HfDims> DimsFromGguf(const GgufFile& f);
Result<OrderedJson> GgufToHfConfig(const GgufFile& f, const HfDims& d, const std::string& torch_dtype);

}  // namespace pocketlm::convert
