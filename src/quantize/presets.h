// Model-level quantization presets: the names users know from llama.cpp's `llama-quantize` (Q4_K_M, Q3_K_S,
// IQ4_NL, ...), each a `llama_ftype` (the number written to `general.file_type`) plus a rule that picks a storage
// type per tensor. The rules follow llama_tensor_get_type() in llama.cpp's src/llama-quant.cpp (build b4748,
// Feb 2025) for every preset, with or without an importance matrix (some rules depend on having one):
//  - the output projection (or the token embedding when it doubles as output) gets Q6_K unless the preset is Q8_0;
//  - attn_v / ffn_down / attn_output / attn_qkv get more bits in the _M/_L/_S k-quant presets, for some layers
//    chosen by llama.cpp's use_more_bits() rule (the first and last eighth and every third layer between);
//  - the IQ1/IQ2/IQ3 presets give attn_v, attn_output, the first ffn_down layers and the embeddings more bits;
//  - a row length that is not a multiple of the chosen type's block falls back as llama.cpp does
//    (Q2_K/Q3_K/IQ4_XS/i-quants -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16 if still not a
//    multiple).
// Which tensors are quantized at all (2-D+ weights, not norms, ...) is decided by IsQuantizable().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "tensor/dtype.h"

namespace pocketlm::quantize {

// llama.cpp's llama_ftype (include/llama.h), as stored in `general.file_type`. Only the ones pocketlm can write.
enum class LlamaFtype : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ2_XXS = 19,
  kIQ2_XS = 20,
  kQ2_K_S = 21,
  kIQ3_XS = 22,
  kIQ3_XXS = 23,
  kIQ1_S = 24,
  kIQ4_NL = 25,
  kIQ3_S = 26,
  kIQ3_M = 27,
  kIQ2_S = 28,
  kIQ2_M = 29,
  kIQ4_XS = 30,
  kIQ1_M = 31,
  kBF16 = 32,
};

struct Preset {
  std::string_view name;  // as llama-quantize spells it, e.g. "Q4_K_M"
  LlamaFtype ftype;
  DType base_type;  // the type of every quantizable tensor no rule singles out (llama.cpp's default_type)
  std::string_view description;
};

// Case-insensitive; also accepts llama-quantize's aliases Q3_K, Q4_K, Q5_K (= the _M presets).
const Preset* FindPreset(std::string_view name);
// Presets llama-quantize refuses without an importance matrix (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, Q2_K_S).
bool PresetNeedsImatrix(const Preset& p);
// "Q4_0, Q4_1, ..." for help texts and errors.
std::string PresetNames();
// A storage type by its name (case-insensitive, "q4_K", "Q4_K", "f16"), for --output-tensor-type and friends.
std::optional<DType> ParseDTypeName(std::string_view name);

// What the rules need to know about the model, read from its metadata and tensor names.
struct ModelFacts {
  std::string arch;
  int n_layer = 0;  // <arch>.block_count
  int n_head = 0;   // layer 0's, when the file stores one value per layer
  int n_head_kv = 0;
  int n_expert = 0;         // <arch>.expert_count, 0 for dense models
  bool is_70b = false;      // llama.cpp's LLM_TYPE_70B (80-layer Llama-2/3 with GQA, Qwen2-72B)
  bool has_output = false;  // output.weight exists; otherwise token_embd.weight doubles as the output projection
  int n_attention_wv = 0;   // tensors named *attn_v.weight, *attn_qkv.weight, *attn_kv_b.weight
  int n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};
Result<ModelFacts> ReadModelFacts(const GgufFile& f);

// Whether llama.cpp would quantize the tensor at all: names ending in "weight" with 2+ dimensions, except norms,
// MoE routers, position / token-type embeddings and a few small special tensors (Mamba, RWKV, T5).
bool IsQuantizable(std::string_view name, int n_dims);

struct TypeOverrides {
  std::optional<DType> output;      // --output-tensor-type
  std::optional<DType> token_embd;  // --token-embedding-type
};

struct TypeChoice {
  DType type;
  bool fallback = false;  // the rule's type did not fit the row length and a fallback type was used
  std::string note;       // why, for a fallback
};

// Picks types tensor by tensor. Stateful like llama.cpp's quantize_state_impl: the attn_v / ffn_* counters
// advance per call, so call Choose() once per quantizable tensor in the output order.
class TypeSelector {
 public:
  TypeSelector(const Preset& preset, ModelFacts facts, TypeOverrides overrides, bool pure, bool has_imatrix = false)
      : preset_(preset), facts_(std::move(facts)), overrides_(overrides), pure_(pure), has_imatrix_(has_imatrix) {}

  // `ne0` is the row length (values per row). Errors: no type fits the row, or a layer index the name contradicts.
  Result<TypeChoice> Choose(const std::string& name, int64_t ne0);

 private:
  Result<DType> RuleType(const std::string& name, int64_t ne0);

  const Preset& preset_;
  ModelFacts facts_;
  TypeOverrides overrides_;
  bool pure_;
  bool has_imatrix_;
  int i_attention_wv_ = 0;
  int i_ffn_down_ = 0;
  int i_ffn_gate_ = 0;
  int i_ffn_up_ = 0;
};

}  // namespace pocketlm::quantize
