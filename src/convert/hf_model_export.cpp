// GGUF hyper-parameters -> config.json, the inverse of HfConfigToGguf, with the keys transformers' config classes
// (LlamaConfig, Qwen2Config, Phi3Config, Gemma2Config) read.
#include "convert/hf_model.h"

namespace pocketlm::convert {

namespace {

Result<int64_t> Int(const GgufFile& f, const std::string& key) {
  return f.GetInt(key);
}

}  // namespace

Result<HfDims> DimsFromGguf(const GgufFile& f) {
  HfDims d;
  PLM_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  d.arch = std::string(arch);
  if (d.arch == "llama") d.hf_class = "LlamaForCausalLM";
  if (d.arch == "qwen2") d.hf_class = "Qwen2ForCausalLM";
  if (d.arch == "phi3") d.hf_class = "Phi3ForCausalLM";
  if (d.arch == "gemma2") d.hf_class = "Gemma2ForCausalLM";
  if (d.hf_class.empty()) {
    return Unsupported("'" + f.path() + "' has architecture '" + d.arch +
                       "'; export supports llama, qwen2, phi3, gemma2");
  }
  const std::string a = d.arch + ".";
  PLM_ASSIGN_OR_RETURN(d.n_embd, Int(f, a + "embedding_length"));
  PLM_ASSIGN_OR_RETURN(d.n_layer, Int(f, a + "block_count"));
  PLM_ASSIGN_OR_RETURN(d.n_head, Int(f, a + "attention.head_count"));
  PLM_ASSIGN_OR_RETURN(d.n_head_kv, f.GetInt(a + "attention.head_count_kv", d.n_head));
  PLM_ASSIGN_OR_RETURN(d.n_ff, Int(f, a + "feed_forward_length"));
  if (d.n_embd <= 0 || d.n_layer <= 0 || d.n_head <= 0 || d.n_head_kv <= 0 || d.n_ff <= 0) {
    return Corrupt("'" + f.path() + "': non-positive model dimensions");
  }
  PLM_ASSIGN_OR_RETURN(d.head_dim, f.GetInt(a + "attention.key_length", d.n_embd / d.n_head));
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr || embd->n_dims != 2) return Corrupt("'" + f.path() + "' lacks a 2-D token_embd.weight");
  d.n_vocab = embd->ne[1];
  d.tied = f.FindTensor("output.weight") == nullptr;
  return d;
}

Result<OrderedJson> GgufToHfConfig(const GgufFile& f, const HfDims& d, const std::string& torch_dtype) {
  const std::string a = d.arch + ".";
  OrderedJson c;
  if (auto name = f.GetString("general.name"); name.ok()) c["_name_or_path"] = std::string(*name);
  c["architectures"] = OrderedJson::array({d.hf_class});
  c["model_type"] = d.arch;
  c["vocab_size"] = d.n_vocab;
  c["hidden_size"] = d.n_embd;
  c["intermediate_size"] = d.n_ff;
  c["num_hidden_layers"] = d.n_layer;
  c["num_attention_heads"] = d.n_head;
  c["num_key_value_heads"] = d.n_head_kv;
  PLM_ASSIGN_OR_RETURN(int64_t n_ctx, f.GetInt(a + "context_length", 4096));
  c["max_position_embeddings"] = n_ctx;
  PLM_ASSIGN_OR_RETURN(double eps, f.GetFloat(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c["rms_norm_eps"] = FloatJson(static_cast<float>(eps));
  PLM_ASSIGN_OR_RETURN(double theta, f.GetFloat(a + "rope.freq_base", 10000.0));
  c["rope_theta"] = FloatJson(static_cast<float>(theta));
  c["rope_scaling"] = nullptr;
  c["tie_word_embeddings"] = d.tied;
  c["torch_dtype"] = torch_dtype;
  for (const char* typ : {"bos", "eos", "pad"}) {
    const std::string key =
        std::string("tokenizer.ggml.") + (std::string(typ) == "pad" ? "padding" : typ) + "_token_id";
    if (f.Find(key) != nullptr) {
      PLM_ASSIGN_OR_RETURN(int64_t id, f.GetInt(key));
      c[std::string(typ) + "_token_id"] = id;
    }
  }
  if (f.FindTensor("rope_freqs.weight") != nullptr) {
    return Unsupported("'" + f.path() +
                       "' has rope_freqs.weight (Llama-3 rope scaling); exporting it is not supported yet");
  }
  PLM_ASSIGN_OR_RETURN(int64_t rope_dim, f.GetInt(a + "rope.dimension_count", d.head_dim));
  if (d.arch == "gemma2") {
    c["head_dim"] = d.head_dim;
    // Gemma2Config scales queries by query_pre_attn_scalar^-0.5; pocketlm and llama.cpp use head_dim, except for
    // the 46-layer 27B model (n_embd / n_head), see model/config.cpp.
    c["query_pre_attn_scalar"] = d.n_layer == 46 ? d.n_embd / d.n_head : d.head_dim;
    PLM_ASSIGN_OR_RETURN(double acap, f.GetFloat(a + "attn_logit_softcapping", 50.0));
    PLM_ASSIGN_OR_RETURN(double fcap, f.GetFloat(a + "final_logit_softcapping", 30.0));
    c["attn_logit_softcapping"] = FloatJson(static_cast<float>(acap));
    c["final_logit_softcapping"] = FloatJson(static_cast<float>(fcap));
    PLM_ASSIGN_OR_RETURN(int64_t window, f.GetInt(a + "attention.sliding_window", 4096));
    c["sliding_window"] = window;
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["hidden_act"] = "gelu_pytorch_tanh";
  } else {
    c["hidden_act"] = "silu";
  }
  if (d.arch == "phi3") {
    PLM_ASSIGN_OR_RETURN(int64_t window, f.GetInt(a + "attention.sliding_window", 0));
    c["sliding_window"] = window > 0 ? OrderedJson(window) : OrderedJson(nullptr);
    PLM_ASSIGN_OR_RETURN(int64_t orig, f.GetInt(a + "rope.scaling.original_context_length", n_ctx));
    c["original_max_position_embeddings"] = orig;
    c["partial_rotary_factor"] = static_cast<double>(rope_dim * d.n_head) / static_cast<double>(d.n_embd);
  } else if (rope_dim != d.head_dim) {
    return Unsupported("'" + f.path() + "': partial rotary embeddings are only exported for phi3");
  }
  if (d.arch == "llama") {
    c["head_dim"] = d.head_dim;
    c["attention_bias"] = f.FindTensor("blk.0.attn_q.bias") != nullptr;
    c["mlp_bias"] = false;
  }
  if (d.arch == "qwen2") c["use_sliding_window"] = false;
  return c;
}

}  // namespace pocketlm::convert
