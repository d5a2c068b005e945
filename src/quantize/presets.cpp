#include "quantize/presets.h"

#include <cctype>
#include <cstdio>
#include <cstring>

#include "tensor/quant/quant.h"

namespace pocketlm::quantize {

namespace {

using F = LlamaFtype;

constexpr Preset kPresets[] = {
    {"Q4_0", F::kQ4_0, DType::kQ4_0, "4.50 bits/weight, legacy round-to-nearest"},
    {"Q4_1", F::kQ4_1, DType::kQ4_1, "5.00 bits/weight, legacy with a per-block minimum"},
    {"Q5_0", F::kQ5_0, DType::kQ5_0, "5.50 bits/weight, legacy"},
    {"Q5_1", F::kQ5_1, DType::kQ5_1, "6.00 bits/weight, legacy with a per-block minimum"},
    {"Q8_0", F::kQ8_0, DType::kQ8_0, "8.50 bits/weight, nearly lossless"},
    {"IQ1_S", F::kIQ1_S, DType::kIQ1_S, "1.56 bits/weight lattice codebook (needs an importance matrix)"},
    {"IQ1_M", F::kIQ1_M, DType::kIQ1_M, "1.75 bits/weight lattice codebook (needs an importance matrix)"},
    {"IQ2_XXS", F::kIQ2_XXS, DType::kIQ2_XXS, "2.06 bits/weight lattice codebook (needs an importance matrix)"},
    {"IQ2_XS", F::kIQ2_XS, DType::kIQ2_XS, "2.31 bits/weight lattice codebook (needs an importance matrix)"},
    {"IQ2_S", F::kIQ2_S, DType::kIQ2_XS, "IQ2_XS with IQ3_S attn_v/attn_output (needs an importance matrix)"},
    {"IQ2_M", F::kIQ2_M, DType::kIQ2_S, "2.5 bits/weight IQ2_S mix (needs an importance matrix)"},
    {"IQ3_XXS", F::kIQ3_XXS, DType::kIQ3_XXS, "3.06 bits/weight lattice codebook"},
    {"IQ3_XS", F::kIQ3_XS, DType::kIQ3_S, "IQ3_S with IQ3_XXS for the middle layers' ffn and attn_q/k"},
    {"IQ3_S", F::kIQ3_S, DType::kIQ3_S, "3.44 bits/weight lattice codebook"},
    {"IQ3_M", F::kIQ3_M, DType::kIQ3_S, "IQ3_S with Q4_K attn_v/attn_output and first ffn_down layers"},
    {"Q2_K_S", F::kQ2_K_S, DType::kQ2_K, "Q2_K with fewer upgrades (needs an importance matrix)"},
    {"Q2_K", F::kQ2_K, DType::kQ2_K, "Q2_K, with Q3_K for attn_v/attn_output/ffn_down and Q6_K output"},
    {"Q3_K_S", F::kQ3_K_S, DType::kQ3_K, "Q3_K everywhere but the output (Q6_K)"},
    {"Q3_K_M", F::kQ3_K_M, DType::kQ3_K, "Q3_K, with Q4_K/Q5_K for attn_v, attn_output and ffn_down"},
    {"Q3_K_L", F::kQ3_K_L, DType::kQ3_K, "Q3_K, with Q5_K for attn_v, attn_output and ffn_down"},
    {"Q4_K_S", F::kQ4_K_S, DType::kQ4_K, "Q4_K, with Q5_K for the first attn_v and ffn_down layers"},
    {"Q4_K_M", F::kQ4_K_M, DType::kQ4_K, "Q4_K, with Q6_K for half of attn_v and ffn_down (the usual choice)"},
    {"Q5_K_S", F::kQ5_K_S, DType::kQ5_K, "Q5_K everywhere but the output (Q6_K)"},
    {"Q5_K_M", F::kQ5_K_M, DType::kQ5_K, "Q5_K, with Q6_K for half of attn_v and ffn_down"},
    {"Q6_K", F::kQ6_K, DType::kQ6_K, "6.56 bits/weight"},
    {"IQ4_NL", F::kIQ4_NL, DType::kIQ4_NL, "4.50 bits/weight, non-linear 4-bit grid in blocks of 32"},
    {"IQ4_XS", F::kIQ4_XS, DType::kIQ4_XS, "4.25 bits/weight, non-linear 4-bit grid in blocks of 256"},
    {"F16", F::kF16, DType::kF16, "16-bit floats (no quantization)"},
    {"BF16", F::kBF16, DType::kBF16, "bfloat16 (no quantization)"},
    {"F32", F::kAllF32, DType::kF32, "32-bit floats (no quantization)"},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool Contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

// llama.cpp's use_more_bits(): the first and last eighth of the layers, and every third layer in between.
bool UseMoreBits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// An integer key that may also be stored per layer (an array); the first layer's value then.
Result<int64_t> GetFirstInt(const GgufFile& f, const std::string& key, int64_t fallback) {
  const GgufValue* v = f.Find(key);
  if (v == nullptr) return fallback;
  if (v->type != GgufType::kArray) return f.GetInt(key);
  if (v->count == 0 || (v->elem_type != GgufType::kI32 && v->elem_type != GgufType::kU32)) {
    return Corrupt("'" + key + "' in '" + f.path() + "' is an array but not of 32-bit integers");
  }
  int32_t first = 0;
  std::memcpy(&first, v->raw, sizeof(first));
  return static_cast<int64_t>(first);
}

}  // namespace

const Preset* FindPreset(std::string_view name) {
  for (const auto& p : kPresets) {
    if (EqualsIgnoreCase(p.name, name)) return &p;
  }
  // llama-quantize's aliases: a bare k-quant type name means its _M preset.
  if (EqualsIgnoreCase(name, "Q3_K")) return FindPreset("Q3_K_M");
  if (EqualsIgnoreCase(name, "Q4_K")) return FindPreset("Q4_K_M");
  if (EqualsIgnoreCase(name, "Q5_K")) return FindPreset("Q5_K_M");
  return nullptr;
}

bool PresetNeedsImatrix(const Preset& p) {
  const F f = p.ftype;
  return f == F::kIQ1_S || f == F::kIQ1_M || f == F::kIQ2_XXS || f == F::kIQ2_XS || f == F::kIQ2_S || f == F::kQ2_K_S;
}

std::string PresetNames() {
  std::string out;
  for (const auto& p : kPresets) {
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out;
}

std::optional<DType> ParseDTypeName(std::string_view name) {
  for (uint32_t raw = 0; raw < 64; ++raw) {
    auto info = LookupDType(raw);
    if (info && EqualsIgnoreCase(info->name, name)) return info->type;
  }
  return std::nullopt;
}

Result<ModelFacts> ReadModelFacts(const GgufFile& f) {
  ModelFacts m;
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return arch.status().WithContext("'" + f.path() + "' is not a model (no architecture)");
  m.arch = std::string(*arch);
  PLM_ASSIGN_OR_RETURN(int64_t n_layer, f.GetInt(m.arch + ".block_count"));
  PLM_ASSIGN_OR_RETURN(int64_t n_head, GetFirstInt(f, m.arch + ".attention.head_count", 0));
  PLM_ASSIGN_OR_RETURN(int64_t n_head_kv, GetFirstInt(f, m.arch + ".attention.head_count_kv", n_head));
  PLM_ASSIGN_OR_RETURN(int64_t n_expert, f.GetInt(m.arch + ".expert_count", 0));
  if (n_layer <= 0 || n_layer > (1 << 20)) {
    return Corrupt(m.arch + ".block_count " + std::to_string(n_layer) + " in '" + f.path() + "' is not usable");
  }
  m.n_layer = static_cast<int>(n_layer);
  m.n_head = static_cast<int>(n_head);
  m.n_head_kv = static_cast<int>(n_head_kv);
  m.n_expert = static_cast<int>(n_expert);
  // llama.cpp's load_hparams() names these LLM_TYPE_70B; its attn_v rule gives them Q5_K instead of Q3_K/Q4_K.
  m.is_70b = m.n_layer == 80 && ((m.arch == "llama" && m.n_head != m.n_head_kv) || m.arch == "qwen2");
  for (const auto& t : f.tensors()) {
    const std::string name(t.name);
    if (Contains(name, "attn_v.weight") || Contains(name, "attn_qkv.weight") || Contains(name, "attn_kv_b.weight")) {
      ++m.n_attention_wv;
    } else if (name == "output.weight") {
      m.has_output = true;
    }
  }
  return m;
}

bool IsQuantizable(std::string_view name, int n_dims) {
  const std::string s(name);
  if (s.size() < 6 || s.compare(s.size() - 6, 6, "weight") != 0) return false;
  if (n_dims < 2) return false;
  static const char* const kKeep[] = {"_norm.weight",
                                      "ffn_gate_inp.weight",
                                      "ssm_conv1d.weight",
                                      "time_mix_first.weight",
                                      "time_mix_w1.weight",
                                      "time_mix_w2.weight",
                                      "time_mix_decay_w1.weight",
                                      "time_mix_decay_w2.weight",
                                      "time_mix_lerp_fused.weight",
                                      "attn_rel_b.weight"};
  for (const char* k : kKeep) {
    if (Contains(s, k)) return false;
  }
  return s != "position_embd.weight" && s != "token_types.weight";
}

Result<DType> TypeSelector::RuleType(const std::string& name, int64_t ne0) {
  const F ft = preset_.ftype;
  const bool falcon = facts_.arch == "falcon";
  const int n_gqa = facts_.n_gqa();
  DType t = preset_.base_type;
  // The layer of an ffn tensor: the running count, or for MoE models (whose expert tensors llama.cpp does not
  // see in layer order) the number in the name.
  auto layer_of = [&](int counter, const std::string& n) -> Result<int> {
    if (facts_.n_expert <= 1) return counter;
    int layer = -1;
    if (std::sscanf(n.c_str(), "blk.%d.", &layer) != 1 || layer < 0 || layer >= facts_.n_layer) {
      return InvalidArgument("cannot tell the layer of tensor '" + n + "' (expected blk.N. with N < " +
                             std::to_string(facts_.n_layer) + ")");
    }
    return layer;
  };
  const int n_layer = facts_.n_layer;

  // The 1-2 bit presets (llama.cpp groups them for the embedding and attention rules).
  const bool iq12 =
      ft == F::kIQ2_XXS || ft == F::kIQ2_XS || ft == F::kIQ1_S || ft == F::kIQ2_S || ft == F::kIQ2_M || ft == F::kIQ1_M;
  const bool iq2_s_m = ft == F::kIQ2_S || ft == F::kIQ2_M;
  const bool iq1 = ft == F::kIQ1_S || ft == F::kIQ1_M;

  if (name == "output.weight" || (!facts_.has_output && name == "token_embd.weight")) {
    if (overrides_.output) return *overrides_.output;
    if (falcon || ne0 % GetDTypeInfo(t).block_size != 0) return DType::kQ8_0;
    if (iq12 || ft == F::kIQ3_XXS) return DType::kQ5_K;
    return t == DType::kQ8_0 ? t : DType::kQ6_K;
  }
  if (name == "token_embd.weight") {
    if (ft == F::kIQ2_XXS || ft == F::kIQ2_XS || iq1) return DType::kQ2_K;
    if (iq2_s_m || ft == F::kIQ3_XXS) return DType::kIQ3_S;
    return t;
  }

  if (iq12) {
    // llama.cpp's first branch for the 1-2 bit presets: only these four tensor kinds change, and only attn_v and
    // ffn_down advance their counters.
    if (Contains(name, "attn_v.weight")) {
      if (n_gqa >= 4 || facts_.n_expert >= 4) {
        t = DType::kQ4_K;
      } else {
        t = iq2_s_m ? DType::kIQ3_S : DType::kQ2_K;
      }
      ++i_attention_wv_;
    } else if (facts_.n_expert == 8 && Contains(name, "attn_k.weight")) {
      t = DType::kQ4_K;
    } else if (Contains(name, "ffn_down")) {
      if (i_ffn_down_ < n_layer / 8) t = iq2_s_m ? DType::kIQ3_S : DType::kQ2_K;
      ++i_ffn_down_;
    } else if (Contains(name, "attn_output.weight")) {
      if (facts_.n_expert == 8) {
        t = DType::kQ5_K;
      } else if (iq1) {
        t = DType::kIQ2_XXS;
      } else if (iq2_s_m) {
        t = DType::kIQ3_S;
      }
    }
    return t;
  }

  if (Contains(name, "attn_v.weight")) {
    const int i = i_attention_wv_++;
    if (ft == F::kQ2_K) {
      t = n_gqa >= 4 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == F::kQ2_K_S && n_gqa >= 4) {
      t = DType::kQ4_K;
    } else if (ft == F::kIQ3_XXS) {
      t = n_gqa >= 4 ? DType::kQ4_K : !has_imatrix_ ? DType::kIQ3_S : DType::kIQ3_XXS;
    } else if ((ft == F::kIQ3_XS || ft == F::kIQ3_S) && n_gqa >= 4) {
      t = DType::kQ4_K;
    } else if (ft == F::kIQ3_M) {
      t = DType::kQ4_K;
    } else if (ft == F::kQ3_K_M) {
      t = i < 2 ? DType::kQ5_K : DType::kQ4_K;
    } else if (ft == F::kQ3_K_L) {
      t = DType::kQ5_K;
    } else if ((ft == F::kIQ4_NL || ft == F::kIQ4_XS) && n_gqa >= 4) {
      t = DType::kQ5_K;
    } else if ((ft == F::kQ4_K_M || ft == F::kQ5_K_M) && UseMoreBits(i, facts_.n_attention_wv)) {
      t = DType::kQ6_K;
    } else if (ft == F::kQ4_K_S && i < 4) {
      t = DType::kQ5_K;
    }
    // 70B: eight query heads share each attn_v, so it is small and worth more bits.
    if (facts_.is_70b && (t == DType::kQ3_K || t == DType::kQ4_K)) t = DType::kQ5_K;
    if (facts_.n_expert == 8) t = DType::kQ8_0;
  } else if (Contains(name, "attn_k.weight")) {
    if (facts_.n_expert == 8) {
      t = DType::kQ8_0;
    } else if (ft == F::kIQ3_XS) {
      t = DType::kIQ3_XXS;
    } else if (ft == F::kIQ3_XXS) {
      t = DType::kIQ2_S;
    }
  } else if (Contains(name, "attn_q.weight")) {
    if (ft == F::kIQ3_XS) {
      t = DType::kIQ3_XXS;
    } else if (ft == F::kIQ3_XXS) {
      t = DType::kIQ2_S;
    }
  } else if (Contains(name, "ffn_down")) {
    PLM_ASSIGN_OR_RETURN(const int i, layer_of(i_ffn_down_, name));
    ++i_ffn_down_;
    const bool more = UseMoreBits(i, n_layer);
    if (ft == F::kQ2_K) {
      t = DType::kQ3_K;
    } else if (ft == F::kQ2_K_S) {
      if (i < n_layer / 8) t = DType::kQ4_K;
    } else if (ft == F::kIQ3_XXS && !has_imatrix_) {
      t = i < n_layer / 8 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == F::kQ3_K_M) {
      t = i < n_layer / 16 ? DType::kQ5_K : (!falcon || more) ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == F::kIQ3_M && (i < n_layer / 8 || (facts_.n_expert == 8 && more))) {
      t = DType::kQ4_K;
    } else if (ft == F::kQ3_K_L) {
      t = falcon ? DType::kQ4_K : DType::kQ5_K;
    } else if (ft == F::kQ4_K_M) {
      if (falcon) {
        t = i < n_layer / 16 ? DType::kQ6_K : more ? DType::kQ5_K : DType::kQ4_K;
      } else if (more) {
        t = DType::kQ6_K;
      }
    } else if (i < n_layer / 8 && (ft == F::kIQ4_NL || ft == F::kIQ4_XS) && !has_imatrix_) {
      t = DType::kQ5_K;
    } else if (ft == F::kQ5_K_M && more) {
      t = DType::kQ6_K;
    } else if (ft == F::kQ4_K_S && !falcon && i < n_layer / 8) {
      t = DType::kQ5_K;
    } else if ((ft == F::kQ4_0 || ft == F::kQ5_0) && has_imatrix_ && i < n_layer / 8) {
      // llama.cpp guards the first ffn_down layers against the legacy types' outliers, only with a matrix (so
      // quantizing without one gives the bytes it always gave).
      t = ft == F::kQ4_0 ? DType::kQ4_1 : DType::kQ5_1;
    }
  } else if (Contains(name, "attn_output.weight")) {
    if (falcon) {
      if (ft == F::kQ3_K_L) t = DType::kQ4_K;
    } else if (facts_.n_expert == 8) {
      if (ft == F::kQ2_K || ft == F::kIQ3_XS || ft == F::kIQ3_XXS || ft == F::kQ3_K_S || ft == F::kQ3_K_M ||
          ft == F::kIQ4_NL || ft == F::kQ4_K_S || ft == F::kQ4_K_M || ft == F::kIQ3_S || ft == F::kIQ3_M ||
          ft == F::kIQ4_XS) {
        t = DType::kQ5_K;
      }
    } else if (ft == F::kQ2_K) {
      t = DType::kQ3_K;
    } else if (ft == F::kIQ3_XXS) {
      t = DType::kIQ3_S;
    } else if (ft == F::kQ3_K_M) {
      t = DType::kQ4_K;
    } else if (ft == F::kQ3_K_L) {
      t = DType::kQ5_K;
    } else if (ft == F::kIQ3_M) {
      t = DType::kQ4_K;
    }
  } else if (Contains(name, "attn_qkv.weight")) {
    if (ft == F::kQ3_K_M || ft == F::kQ3_K_L || ft == F::kIQ3_M) {
      t = DType::kQ4_K;
    } else if (ft == F::kQ4_K_M) {
      t = DType::kQ5_K;
    } else if (ft == F::kQ5_K_M) {
      t = DType::kQ6_K;
    }
  } else if (Contains(name, "ffn_gate") || Contains(name, "ffn_up")) {
    int& counter = Contains(name, "ffn_gate") ? i_ffn_gate_ : i_ffn_up_;
    PLM_ASSIGN_OR_RETURN(const int i, layer_of(counter++, name));
    if (ft == F::kIQ3_XS && i >= n_layer / 8 && i < 7 * n_layer / 8) t = DType::kIQ3_XXS;
  }
  return t;
}

Result<TypeChoice> TypeSelector::Choose(const std::string& name, int64_t ne0) {
  TypeChoice c{preset_.base_type};
  if (!pure_ && GetDTypeInfo(preset_.base_type).quantized) {
    PLM_ASSIGN_OR_RETURN(c.type, RuleType(name, ne0));
  }
  if (name == "token_embd.weight" && overrides_.token_embd) c.type = *overrides_.token_embd;
  if (name == "output.weight" && overrides_.output) c.type = *overrides_.output;

  // Rows that do not split into whole blocks: llama.cpp's fallbacks (same order of preference).
  const DType wanted = c.type;
  if (ne0 % GetDTypeInfo(wanted).block_size != 0) {
    switch (wanted) {
      case DType::kIQ2_XXS:
      case DType::kIQ2_XS:
      case DType::kIQ2_S:
      case DType::kIQ3_XXS:
      case DType::kIQ3_S:
      case DType::kIQ1_S:
      case DType::kIQ1_M:
      case DType::kQ2_K:
      case DType::kQ3_K:
      case DType::kIQ4_XS: c.type = DType::kIQ4_NL; break;
      case DType::kQ4_K: c.type = DType::kQ5_0; break;
      case DType::kQ5_K: c.type = DType::kQ5_1; break;
      case DType::kQ6_K: c.type = DType::kQ8_0; break;
      default:
        return InvalidArgument("tensor '" + name + "': rows of " + std::to_string(ne0) + " values do not split into " +
                               std::string(DTypeName(wanted)) + " blocks of " +
                               std::to_string(GetDTypeInfo(wanted).block_size) +
                               " and llama.cpp has no fallback for that type; choose a k-quant preset or F16");
    }
    if (ne0 % GetDTypeInfo(c.type).block_size != 0) c.type = DType::kF16;
    c.fallback = true;
    c.note = "rows of " + std::to_string(ne0) + " values are not a multiple of " +
             std::to_string(GetDTypeInfo(wanted).block_size) + " (" + std::string(DTypeName(wanted)) + "), using " +
             std::string(DTypeName(c.type));
  }
  const quant::QuantTraits& tr = quant::GetQuantTraits(c.type);
  if (tr.quantize_row == nullptr && tr.quantize_row_weighted == nullptr) {
    return Unsupported("tensor '" + name + "': pocketlm cannot write " + std::string(DTypeName(c.type)) +
                       " yet; choose one of " + PresetNames());
  }
  return c;
}

}  // namespace pocketlm::quantize
