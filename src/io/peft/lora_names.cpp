#include "io/peft/lora_names.h"

#include <cstring>
#include <span>

namespace pocketlm {

namespace {

struct Target {
  std::string_view peft;  // module path inside a decoder layer
  std::string_view gguf;  // tensor kind inside a block
};

// Source: gguf-py/gguf/tensor_mapping.py (MODEL_TENSOR.ATTN_Q ... FFN_DOWN, ATTN_QKV) and constants.py's
// per-architecture tensor lists.
constexpr Target kSeparate[] = {
    {"self_attn.q_proj", "attn_q"},      {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
constexpr Target kPhi3[] = {
    {"self_attn.qkv_proj", "attn_qkv"},
    {"self_attn.o_proj", "attn_output"},
    {"mlp.gate_up_proj", "ffn_up"},  // Phi-3's fused gate+up is stored whole as ffn_up
    {"mlp.down_proj", "ffn_down"},
};

Result<std::span<const Target>> TargetsOf(std::string_view arch) {
  if (arch == "llama" || arch == "qwen2" || arch == "gemma2") return std::span<const Target>(kSeparate);
  if (arch == "phi3") return std::span<const Target>(kPhi3);
  return Unsupported("LoRA conversion does not know architecture '" + std::string(arch) +
                     "' (supported: " + LoraConvertibleArchitectures() + ")");
}

std::string Names(std::span<const Target> targets, bool peft) {
  std::string s;
  for (const auto& t : targets) s += (s.empty() ? "" : ", ") + std::string(peft ? t.peft : t.gguf);
  return s;
}

// Reads "<digits>." at the front of s (a layer index); false when absent or absurdly large.
bool TakeLayer(std::string_view* s, int* layer) {
  size_t n = 0;
  int v = 0;
  while (n < s->size() && (*s)[n] >= '0' && (*s)[n] <= '9' && n < 6) v = v * 10 + ((*s)[n++] - '0');
  if (n == 0 || n >= s->size() || (*s)[n] != '.' || (n > 1 && (*s)[0] == '0')) return false;
  *layer = v;
  s->remove_prefix(n + 1);
  return true;
}

}  // namespace

std::string LoraConvertibleArchitectures() {
  return "llama, qwen2, phi3, gemma2";
}

Result<std::string> PeftModuleToGgufTensor(std::string_view arch, std::string_view module) {
  PLM_ASSIGN_OR_RETURN(auto targets, TargetsOf(arch));
  std::string_view rest = module;
  int layer = 0;
  constexpr std::string_view kPrefix = "model.layers.";
  if (rest.starts_with(kPrefix)) {
    rest.remove_prefix(kPrefix.size());
    if (TakeLayer(&rest, &layer)) {
      for (const auto& t : targets) {
        if (rest == t.peft) return "blk." + std::to_string(layer) + "." + std::string(t.gguf) + ".weight";
      }
    }
  }
  return Unsupported("LoRA on module '" + std::string(module) + "' is not supported yet for " + std::string(arch) +
                     " (supported: model.layers.N." + Names(targets, true) + ")");
}

Result<std::string> GgufTensorToPeftModule(std::string_view arch, std::string_view tensor) {
  PLM_ASSIGN_OR_RETURN(auto targets, TargetsOf(arch));
  std::string_view rest = tensor;
  int layer = 0;
  if (rest.starts_with("blk.") && rest.ends_with(".weight")) {
    rest.remove_prefix(4);
    rest.remove_suffix(7);
    if (TakeLayer(&rest, &layer)) {
      for (const auto& t : targets) {
        if (rest == t.gguf) return "model.layers." + std::to_string(layer) + "." + std::string(t.peft);
      }
    }
  }
  return Unsupported("LoRA on tensor '" + std::string(tensor) + "' has no PEFT equivalent here for " +
                     std::string(arch) + " (supported: blk.N." + Names(targets, false) + ")");
}

int64_t LoraTargetSortKey(std::string_view arch, std::string_view gguf_tensor) {
  auto targets = TargetsOf(arch);
  std::string_view rest = gguf_tensor;
  int layer = 0;
  if (!targets.ok() || !rest.starts_with("blk.") || !rest.ends_with(".weight")) return -1;
  rest.remove_prefix(4);
  rest.remove_suffix(7);
  if (!TakeLayer(&rest, &layer)) return -1;
  for (size_t k = 0; k < targets->size(); ++k) {
    if (rest == (*targets)[k].gguf) return static_cast<int64_t>(layer) * 16 + static_cast<int64_t>(k);
  }
  return -1;
}

char RopePermutationOf(std::string_view arch, std::string_view gguf_tensor) {
  if (arch != "llama" || !gguf_tensor.starts_with("blk.")) return 0;
  if (gguf_tensor.ends_with(".attn_q.weight")) return 'q';
  if (gguf_tensor.ends_with(".attn_k.weight")) return 'k';
  return 0;
}

Status PermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t n_rows, size_t row_bytes, int64_t n_head,
                       bool to_gguf) {
  if (n_head <= 0 || n_rows <= 0 || n_rows % (2 * n_head) != 0) {
    return InvalidArgument(std::to_string(n_rows) + " rows do not split into " + std::to_string(n_head) +
                           " heads of an even size (wrong head count for the RoPE reordering?)");
  }
  const int64_t d = n_rows / n_head;
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < d / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t gguf_row = h * d + 2 * i + j;
        const int64_t hf_row = h * d + j * (d / 2) + i;
        const int64_t from = to_gguf ? hf_row : gguf_row;
        const int64_t to = to_gguf ? gguf_row : hf_row;
        std::memcpy(dst + static_cast<size_t>(to) * row_bytes, src + static_cast<size_t>(from) * row_bytes, row_bytes);
      }
    }
  }
  return Status::Ok();
}

}  // namespace pocketlm
