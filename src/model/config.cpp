#include "model/config.h"

#include <cmath>

namespace pocketlm {

namespace {

// Family switches as data. `sliding` is how a `sliding_window` key, when present, applies.
struct Family {
  const char* arch;
  RopeStyle rope;
  Activation act;
  bool post_norms;
  bool scale_embd;
  SlidingPattern sliding;
};

// RoPE styles as llama.cpp assigns them (llama_model_rope_type): NORM for llama, NEOX for the others.
constexpr Family kFamilies[] = {
    {"llama", RopeStyle::kNormal, Activation::kSilu, false, false, SlidingPattern::kNone},
    {"qwen2", RopeStyle::kNeox, Activation::kSilu, false, false, SlidingPattern::kNone},
    {"phi3", RopeStyle::kNeox, Activation::kSilu, false, false, SlidingPattern::kAllLayers},
    {"gemma2", RopeStyle::kNeox, Activation::kGeluTanh, true, true, SlidingPattern::kEvenLayers},
};

Result<int> ReadPositive(const GgufFile& f, const std::string& key, int64_t max, std::optional<int64_t> fallback = {}) {
  int64_t v = 0;
  if (fallback) {
    PLM_ASSIGN_OR_RETURN(v, f.GetInt(key, *fallback));
  } else {
    PLM_ASSIGN_OR_RETURN(v, f.GetInt(key));
  }
  if (v <= 0 || v > max) {
    return Corrupt("GGUF file '" + f.path() + "': " + key + " = " + std::to_string(v) + " is out of range (1.." +
                   std::to_string(max) + ")");
  }
  return static_cast<int>(v);
}

}  // namespace

std::string SupportedArchitectures() {
  std::string s;
  for (const auto& fam : kFamilies) s += (s.empty() ? "" : ", ") + std::string(fam.arch);
  return s;
}

Result<ModelConfig> ReadModelConfig(const GgufFile& f) {
  ModelConfig c;
  PLM_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  c.arch = std::string(arch);
  const Family* fam = nullptr;
  for (const auto& x : kFamilies) {
    if (c.arch == x.arch) fam = &x;
  }
  if (fam == nullptr) {
    return Unsupported("model '" + f.path() + "' has architecture '" + c.arch +
                       "'; pocketlm supports: " + SupportedArchitectures());
  }
  const std::string a = c.arch + ".";
  PLM_ASSIGN_OR_RETURN(c.n_embd, ReadPositive(f, a + "embedding_length", 1 << 16));
  PLM_ASSIGN_OR_RETURN(c.n_layer, ReadPositive(f, a + "block_count", 1024));
  PLM_ASSIGN_OR_RETURN(c.n_head, ReadPositive(f, a + "attention.head_count", 1024));
  PLM_ASSIGN_OR_RETURN(c.n_head_kv, ReadPositive(f, a + "attention.head_count_kv", 1024, c.n_head));
  PLM_ASSIGN_OR_RETURN(c.n_ff, ReadPositive(f, a + "feed_forward_length", 1 << 20));
  PLM_ASSIGN_OR_RETURN(c.n_ctx_train, ReadPositive(f, a + "context_length", 1 << 24, 4096));
  if (c.n_head % c.n_head_kv != 0) {
    return Corrupt("model '" + f.path() + "': head_count " + std::to_string(c.n_head) +
                   " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  }
  if (c.n_embd % c.n_head != 0 && f.Find(a + "attention.key_length") == nullptr) {
    return Corrupt("model '" + f.path() + "': embedding_length is not a multiple of head_count");
  }
  PLM_ASSIGN_OR_RETURN(c.head_dim, ReadPositive(f, a + "attention.key_length", 4096, c.n_embd / c.n_head));
  PLM_ASSIGN_OR_RETURN(int v_dim, ReadPositive(f, a + "attention.value_length", 4096, c.head_dim));
  if (v_dim != c.head_dim) return Unsupported("model '" + f.path() + "': value_length differs from key_length");
  PLM_ASSIGN_OR_RETURN(c.rope_dim, ReadPositive(f, a + "rope.dimension_count", 4096, c.head_dim));
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return Corrupt("model '" + f.path() + "': rope.dimension_count " + std::to_string(c.rope_dim) +
                   " must be even and at most the head size " + std::to_string(c.head_dim));
  }
  PLM_ASSIGN_OR_RETURN(double eps, f.GetFloat(a + "attention.layer_norm_rms_epsilon", 1e-5));
  PLM_ASSIGN_OR_RETURN(double base, f.GetFloat(a + "rope.freq_base", 10000.0));
  if (!(eps > 0 && eps < 1) || !(base > 1) || !std::isfinite(base)) {
    return Corrupt("model '" + f.path() + "': rms epsilon or rope.freq_base out of range");
  }
  c.rms_eps = static_cast<float>(eps);
  c.rope_base = static_cast<float>(base);
  if (const GgufValue* scaling = f.Find(a + "rope.scaling.type")) {
    if (scaling->type == GgufType::kString && scaling->str != "none" && scaling->str != "linear") {
      return Unsupported("model '" + f.path() + "': rope scaling '" + std::string(scaling->str) +
                         "' is not supported yet");
    }
  }
  PLM_ASSIGN_OR_RETURN(double factor, f.GetFloat(a + "rope.scaling.factor", 1.0));
  if (factor != 0.0 && factor != 1.0) {
    return Unsupported("model '" + f.path() + "': linear rope scaling (factor " + std::to_string(factor) +
                       ") is not supported yet");
  }

  c.rope_style = fam->rope;
  c.activation = fam->act;
  c.post_norms = fam->post_norms;
  c.embd_scale = fam->scale_embd ? std::sqrt(static_cast<float>(c.n_embd)) : 1.0f;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.arch == "gemma2" && c.n_layer == 46) {
    // Gemma-2 27B scales queries by 1/sqrt(n_embd / n_head) instead (query_pre_attn_scalar = 144 in its HF
    // config); llama.cpp keys this on the layer count, and so do we, to load the same files.
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_embd / c.n_head));
  }
  PLM_ASSIGN_OR_RETURN(double acap, f.GetFloat(a + "attn_logit_softcapping", 0.0));
  PLM_ASSIGN_OR_RETURN(double fcap, f.GetFloat(a + "final_logit_softcapping", 0.0));
  if (acap < 0 || fcap < 0) return Corrupt("model '" + f.path() + "': negative soft-capping value");
  c.attn_softcap = static_cast<float>(acap);
  c.final_softcap = static_cast<float>(fcap);
  PLM_ASSIGN_OR_RETURN(int64_t window, f.GetInt(a + "attention.sliding_window", 0));
  if (window < 0) return Corrupt("model '" + f.path() + "': negative sliding_window");
  c.sliding_window = static_cast<int>(window > (1 << 24) ? (1 << 24) : window);
  c.sliding_pattern = fam->sliding;

  PLM_ASSIGN_OR_RETURN(const GgufValue* tokens, f.GetArray("tokenizer.ggml.tokens", GgufType::kString));
  if (tokens->count == 0 || tokens->count > (1u << 24)) return Corrupt("model '" + f.path() + "': bad vocabulary size");
  c.n_vocab = static_cast<int>(tokens->count);
  return c;
}

}  // namespace pocketlm
