#include "convert/hf_model.h"

#include <cmath>

namespace pocketlm::convert {

namespace {

struct Arch {
  const char* hf_class;
  const char* arch;
  bool tied_default;  // transformers' config class default for tie_word_embeddings
};

constexpr Arch kArchs[] = {
    {"LlamaForCausalLM", "llama", false},
    {"Qwen2ForCausalLM", "qwen2", false},
    {"Phi3ForCausalLM", "phi3", false},
    {"Gemma2ForCausalLM", "gemma2", true},
};

Result<int64_t> Positive(const Json& cfg, const char* key, const std::string& where, int64_t max) {
  auto v = JsonInt(cfg, key);
  if (!v) return Corrupt(where + ": " + key + " is missing or not an integer");
  if (*v <= 0 || *v > max) return Corrupt(where + ": " + key + " = " + std::to_string(*v) + " is out of range");
  return *v;
}

std::vector<int64_t> Shape(int64_t rows, int64_t cols) {
  return {rows, cols};
}

}  // namespace

std::string SupportedHfArchitectures() {
  std::string s;
  for (const Arch& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.hf_class);
  return s;
}

Result<HfDims> ParseHfConfig(const Json& cfg, const std::string& where) {
  HfDims d;
  auto archs = cfg.find("architectures");
  if (archs == cfg.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return Corrupt(where + " has no \"architectures\" list");
  }
  d.hf_class = (*archs)[0].get<std::string>();
  const Arch* arch = nullptr;
  for (const Arch& a : kArchs) {
    if (d.hf_class == a.hf_class) arch = &a;
  }
  if (arch == nullptr) {
    return Unsupported(where + ": architecture " + d.hf_class +
                       " is not supported; supported: " + SupportedHfArchitectures());
  }
  d.arch = arch->arch;
  PLM_ASSIGN_OR_RETURN(d.n_vocab, Positive(cfg, "vocab_size", where, 1 << 24));
  PLM_ASSIGN_OR_RETURN(d.n_embd, Positive(cfg, "hidden_size", where, 1 << 16));
  PLM_ASSIGN_OR_RETURN(d.n_layer, Positive(cfg, "num_hidden_layers", where, 1024));
  PLM_ASSIGN_OR_RETURN(d.n_head, Positive(cfg, "num_attention_heads", where, 1024));
  PLM_ASSIGN_OR_RETURN(d.n_ff, Positive(cfg, "intermediate_size", where, 1 << 20));
  d.n_head_kv = d.n_head;
  if (JsonInt(cfg, "num_key_value_heads")) {
    PLM_ASSIGN_OR_RETURN(d.n_head_kv, Positive(cfg, "num_key_value_heads", where, 1024));
  }
  if (d.n_head % d.n_head_kv != 0) {
    return Corrupt(where + ": num_attention_heads is not a multiple of num_key_value_heads");
  }
  d.head_dim = d.n_embd / d.n_head;
  if (JsonInt(cfg, "head_dim")) {
    PLM_ASSIGN_OR_RETURN(d.head_dim, Positive(cfg, "head_dim", where, 4096));
  } else if (d.n_embd % d.n_head != 0) {
    return Corrupt(where + ": hidden_size is not a multiple of num_attention_heads and there is no head_dim");
  }
  if (d.arch != "gemma2" && d.head_dim * d.n_head != d.n_embd) {
    return Unsupported(where + ": head_dim * num_attention_heads != hidden_size is only supported for Gemma-2");
  }
  d.tied = JsonBool(cfg, "tie_word_embeddings").value_or(arch->tied_default);
  return d;
}

Result<KvList> HfConfigToGguf(const Json& cfg, const HfDims& d, uint32_t file_type, const std::string& where) {
  KvList kv;
  const std::string a = d.arch + ".";
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  PLM_ASSIGN_OR_RETURN(int64_t n_ctx, Positive(cfg, "max_position_embeddings", where, 1 << 24));
  auto eps = JsonNumber(cfg, "rms_norm_eps");
  if (!eps || !(*eps > 0 && *eps < 1)) return Corrupt(where + ": rms_norm_eps is missing or out of range");
  auto theta = JsonNumber(cfg, "rope_theta");
  if (theta && !(*theta > 1 && std::isfinite(*theta))) return Corrupt(where + ": rope_theta is out of range");

  if (d.arch == "phi3") {
    // Phi3MiniModel.set_gguf_parameters
    const double rot_pct = JsonNumber(cfg, "partial_rotary_factor").value_or(1.0);
    kv.U32(a + "context_length", u32(n_ctx));
    if (auto orig = JsonInt(cfg, "original_max_position_embeddings")) {
      kv.U32(a + "rope.scaling.original_context_length", u32(*orig));
    }
    kv.U32(a + "embedding_length", u32(d.n_embd));
    kv.U32(a + "feed_forward_length", u32(d.n_ff));
    kv.U32(a + "block_count", u32(d.n_layer));
    kv.U32(a + "attention.head_count", u32(d.n_head));
    kv.U32(a + "attention.head_count_kv", u32(d.n_head_kv));
    kv.F32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(*eps));
    kv.U32(a + "rope.dimension_count", u32(static_cast<int64_t>(rot_pct * static_cast<double>(d.n_embd)) / d.n_head));
    kv.F32(a + "rope.freq_base", static_cast<float>(theta.value_or(10000.0)));
    kv.U32("general.file_type", file_type);
    kv.U32(a + "attention.sliding_window", u32(JsonInt(cfg, "sliding_window").value_or(0)));
    return kv;
  }
  if (d.arch == "gemma2") {
    // Gemma2Model.set_gguf_parameters; rope_theta is not written there (llama.cpp's default 10000 applies), so we
    // only write one that differs.
    kv.U32(a + "context_length", u32(n_ctx));
    kv.U32(a + "embedding_length", u32(d.n_embd));
    kv.U32(a + "block_count", u32(d.n_layer));
    kv.U32(a + "feed_forward_length", u32(d.n_ff));
    kv.U32(a + "attention.head_count", u32(d.n_head));
    kv.U32(a + "attention.head_count_kv", u32(d.n_head_kv));
    kv.F32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(*eps));
    kv.U32(a + "attention.key_length", u32(d.head_dim));
    kv.U32(a + "attention.value_length", u32(d.head_dim));
    kv.U32("general.file_type", file_type);
    auto acap = JsonNumber(cfg, "attn_logit_softcapping");
    auto fcap = JsonNumber(cfg, "final_logit_softcapping");
    auto window = JsonInt(cfg, "sliding_window");
    if (!acap || !fcap || !window) {
      return Corrupt(where + ": Gemma-2 needs attn_logit_softcapping, final_logit_softcapping and sliding_window");
    }
    kv.F32(a + "attn_logit_softcapping", static_cast<float>(*acap));
    kv.F32(a + "final_logit_softcapping", static_cast<float>(*fcap));
    kv.U32(a + "attention.sliding_window", u32(*window));
    if (theta && *theta != 10000.0) kv.F32(a + "rope.freq_base", static_cast<float>(*theta));
    return kv;
  }
  // TextModel.set_gguf_parameters (llama, qwen2), then LlamaModel's additions.
  kv.U32(a + "block_count", u32(d.n_layer));
  kv.U32(a + "context_length", u32(n_ctx));
  kv.U32(a + "embedding_length", u32(d.n_embd));
  kv.U32(a + "feed_forward_length", u32(d.n_ff));
  kv.U32(a + "attention.head_count", u32(d.n_head));
  if (JsonInt(cfg, "num_key_value_heads")) kv.U32(a + "attention.head_count_kv", u32(d.n_head_kv));
  if (theta) kv.F32(a + "rope.freq_base", static_cast<float>(*theta));
  kv.F32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(*eps));
  kv.U32("general.file_type", file_type);
  if (d.arch == "llama") {
    kv.U32(a + "vocab_size", u32(d.n_vocab));
    kv.U32(a + "rope.dimension_count", u32(d.head_dim));
  }
  return kv;
}

Result<std::vector<float>> HfRopeFreqs(const Json& cfg, const HfDims& d, const std::string& where) {
  auto rs = cfg.find("rope_scaling");
  if (rs == cfg.end() || rs->is_null()) return std::vector<float>();
  std::string type;
  if (rs->is_object()) type = JsonString(*rs, "rope_type").value_or(JsonString(*rs, "type").value_or(""));
  if (d.arch != "llama" || type != "llama3") {
    return Unsupported(where + ": rope_scaling " + rs->dump() + " is not supported yet (only Llama-3's \"llama3\")");
  }
  // LlamaModel.generate_extra_tensors, in float32 as torch computes it there.
  const double base = JsonNumber(cfg, "rope_theta").value_or(10000.0);
  const float factor = static_cast<float>(JsonNumber(*rs, "factor").value_or(8.0));
  const float low = static_cast<float>(JsonNumber(*rs, "low_freq_factor").value_or(1.0));
  const float high = static_cast<float>(JsonNumber(*rs, "high_freq_factor").value_or(4.0));
  const auto old_ctx = static_cast<float>(JsonNumber(*rs, "original_max_position_embeddings").value_or(8192));
  const float low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> out;
  const int64_t dim = d.head_dim;
  for (int64_t i = 0; i < dim; i += 2) {
    const float exponent = static_cast<float>(i) / static_cast<float>(dim);
    const float freq = 1.0f / std::pow(static_cast<float>(base), exponent);
    const float wavelen = static_cast<float>(2 * M_PI) / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      const float smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

std::vector<TensorMap> TensorMaps(const HfDims& d) {
  std::vector<TensorMap> m;
  const int64_t E = d.n_embd, q = d.n_head * d.head_dim, kv = d.n_head_kv * d.head_dim, ff = d.n_ff;
  const bool llama = d.arch == "llama", phi3 = d.arch == "phi3", gemma = d.arch == "gemma2";
  const Transform norm = gemma ? Transform::kAddOne : Transform::kNone;
  m.push_back({"model.embed_tokens.weight", "token_embd.weight", Shape(d.n_vocab, E)});
  for (int64_t i = 0; i < d.n_layer; ++i) {
    const std::string h = "model.layers." + std::to_string(i) + ".", g = "blk." + std::to_string(i) + ".";
    m.push_back({h + "input_layernorm.weight", g + "attn_norm.weight", {E}, norm});
    if (phi3) {
      m.push_back({h + "self_attn.qkv_proj.weight", g + "attn_qkv.weight", Shape(q + 2 * kv, E)});
    } else {
      m.push_back({h + "self_attn.q_proj.weight", g + "attn_q.weight", Shape(q, E),
                   llama ? Transform::kPermuteQ : Transform::kNone});
      m.push_back({h + "self_attn.k_proj.weight", g + "attn_k.weight", Shape(kv, E),
                   llama ? Transform::kPermuteK : Transform::kNone});
      m.push_back({h + "self_attn.v_proj.weight", g + "attn_v.weight", Shape(kv, E)});
      // Qwen2 always has q/k/v biases; Llama has them with attention_bias (permuted like the weights' rows).
      const bool need_bias = d.arch == "qwen2";
      m.push_back({h + "self_attn.q_proj.bias",
                   g + "attn_q.bias",
                   {q},
                   llama ? Transform::kPermuteQ : Transform::kNone,
                   !need_bias});
      m.push_back({h + "self_attn.k_proj.bias",
                   g + "attn_k.bias",
                   {kv},
                   llama ? Transform::kPermuteK : Transform::kNone,
                   !need_bias});
      m.push_back({h + "self_attn.v_proj.bias", g + "attn_v.bias", {kv}, Transform::kNone, !need_bias});
    }
    m.push_back({h + "self_attn.o_proj.weight", g + "attn_output.weight", Shape(E, q)});
    if (gemma) {
      m.push_back({h + "post_attention_layernorm.weight", g + "post_attention_norm.weight", {E}, norm});
      m.push_back({h + "pre_feedforward_layernorm.weight", g + "ffn_norm.weight", {E}, norm});
    } else {
      m.push_back({h + "post_attention_layernorm.weight", g + "ffn_norm.weight", {E}, norm});
    }
    if (phi3) {
      m.push_back({h + "mlp.gate_up_proj.weight", g + "ffn_up.weight", Shape(2 * ff, E)});
    } else {
      m.push_back({h + "mlp.gate_proj.weight", g + "ffn_gate.weight", Shape(ff, E)});
      m.push_back({h + "mlp.up_proj.weight", g + "ffn_up.weight", Shape(ff, E)});
    }
    m.push_back({h + "mlp.down_proj.weight", g + "ffn_down.weight", Shape(E, ff)});
    if (gemma) m.push_back({h + "post_feedforward_layernorm.weight", g + "post_ffw_norm.weight", {E}, norm});
  }
  m.push_back({"model.norm.weight", "output_norm.weight", {E}, norm});
  // Untied checkpoints normally carry lm_head; without it llama.cpp falls back to token_embd, as pocketlm does.
  if (!d.tied) m.push_back({"lm_head.weight", "output.weight", Shape(d.n_vocab, E), Transform::kNone, true});
  return m;
}

}  // namespace pocketlm::convert
