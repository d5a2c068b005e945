#include "io/peft/peft_adapter.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/atomic_file.h"
#include "io/gguf/gguf_writer.h"
#include "io/peft/lora_names.h"
#include "io/safetensors/safetensors_writer.h"

namespace pocketlm {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPeftPrefix = "base_model.model.";

Status ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("cannot read '" + path + "'");
  *out = ss.str();
  return Status::Ok();
}

// Heads llama.cpp's permutation uses for this tensor: n_head for q, n_head_kv (default n_head) for k.
Result<int64_t> PermutationHeads(const GgufFile& base, const std::string& arch, char which) {
  PLM_ASSIGN_OR_RETURN(int64_t n_head, base.GetInt(arch + ".attention.head_count"));
  if (which == 'k') {
    PLM_ASSIGN_OR_RETURN(n_head, base.GetInt(arch + ".attention.head_count_kv", n_head));
  }
  return n_head;
}

// Reorders B's rows (n_out rows of rank values) for llama's q / k; a no-op for every other target.
Status ReorderB(LoraPairData* p, const std::string& arch, const GgufFile* base, bool to_gguf) {
  const char which = RopePermutationOf(arch, p->target);
  if (which == 0) return Status::Ok();
  if (base == nullptr) {
    return InvalidArgument("converting the " + arch + " adapter's '" + p->target +
                           "' needs the base model for its head count (llama.cpp reorders q/k rows for RoPE); "
                           "pass -m BASE.gguf");
  }
  PLM_ASSIGN_OR_RETURN(int64_t heads, PermutationHeads(*base, arch, which));
  if (p->n_out <= 0) return Corrupt("'" + p->target + "' has no output rows");
  std::vector<uint8_t> out(p->b.size());
  const size_t row_bytes = p->b.size() / static_cast<size_t>(p->n_out);
  PLM_RETURN_IF_ERROR(PermuteRopeRows(p->b.data(), out.data(), p->n_out, row_bytes, heads, to_gguf)
                          .WithContext("'" + p->target + "' of model '" + base->path() + "'"));
  p->b = std::move(out);
  return Status::Ok();
}

Status CheckBaseIsModel(const GgufFile& base) {
  if (const GgufValue* t = base.Find("general.type");
      t != nullptr && t->type == GgufType::kString && t->str == "adapter") {
    return InvalidArgument("'" + base.path() + "' is a LoRA adapter; -m must name the base model");
  }
  return Status::Ok();
}

}  // namespace

Result<PeftAdapter> OpenPeftAdapter(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("'" + dir + "' is not a directory (a PEFT adapter is one)");
  const std::string config_path = (fs::path(dir) / kPeftConfigFile).string();
  const std::string weights_path = (fs::path(dir) / kPeftWeightsFile).string();
  if (!fs::exists(config_path, ec)) {
    return NotFound("'" + dir + "' has no " + kPeftConfigFile + " (not a PEFT adapter directory?)");
  }
  if (!fs::exists(weights_path, ec)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin", ec)) {
      return Unsupported("'" + dir +
                         "' holds adapter_model.bin (a PyTorch pickle), which is not supported; save the adapter "
                         "with safe_serialization=True to get adapter_model.safetensors");
    }
    return NotFound("'" + dir + "' has no " + kPeftWeightsFile);
  }
  PeftAdapter peft;
  peft.dir = dir;
  std::string text;
  PLM_RETURN_IF_ERROR(ReadWholeFile(config_path, &text));
  PLM_ASSIGN_OR_RETURN(peft.config, ParsePeftLoraConfig(text, config_path));
  PLM_ASSIGN_OR_RETURN(peft.weights, SafetensorsFile::Open(weights_path));

  const std::string where = "PEFT weights '" + weights_path + "'";
  std::map<std::string, size_t> by_module;
  for (const StTensor& t : peft.weights.tensors()) {
    std::string_view n = t.name;
    const bool is_a = n.ends_with(".lora_A.weight");
    const bool is_b = n.ends_with(".lora_B.weight");
    if (!n.starts_with(kPeftPrefix) || (!is_a && !is_b)) {
      if (n.find("lora_embedding_") != std::string_view::npos) {
        return Unsupported(where + ": tensor '" + t.name + "' is an embedding LoRA, which is not supported yet");
      }
      return Unsupported(where + ": tensor '" + t.name +
                         "' is not a LoRA factor (base_model.model.<module>.lora_A.weight / .lora_B.weight); "
                         "adapters holding other trained tensors are not supported yet");
    }
    PLM_RETURN_IF_ERROR(peft.weights.CheckUsable(t));
    if (t.shape.size() != 2) {
      return Corrupt(where + ": tensor '" + t.name + "' has shape " + StShapeString(t.shape) + ", not 2-D");
    }
    const int64_t rank = is_a ? t.shape[0] : t.shape[1];
    if (rank != peft.config.r) {
      return Corrupt(where + ": tensor '" + t.name + "' " + StShapeString(t.shape) + " has rank " +
                     std::to_string(rank) + " but the config says r = " + std::to_string(peft.config.r));
    }
    n.remove_prefix(kPeftPrefix.size());
    n.remove_suffix(std::string_view(".lora_A.weight").size());
    auto [it, added] = by_module.emplace(std::string(n), peft.pairs.size());
    if (added) peft.pairs.push_back({std::string(n), nullptr, nullptr});
    (is_a ? peft.pairs[it->second].a : peft.pairs[it->second].b) = &t;
  }
  for (const auto& p : peft.pairs) {
    if (p.a == nullptr || p.b == nullptr) {
      return Corrupt(where + ": module '" + p.module + "' has only one of lora_A / lora_B");
    }
  }
  if (peft.pairs.empty()) return Corrupt(where + " holds no LoRA tensors");
  return peft;
}

Result<LoraAdapterData> PeftToLora(const PeftAdapter& peft, const GgufFile& base) {
  PLM_RETURN_IF_ERROR(CheckBaseIsModel(base));
  LoraAdapterData lora;
  PLM_ASSIGN_OR_RETURN(std::string_view arch, base.GetString("general.architecture"));
  lora.arch = std::string(arch);
  // GGUF applies alpha / r; rsLoRA's alpha / sqrt(r) equals (alpha * sqrt(r)) / r.
  const double r = static_cast<double>(peft.config.r);
  lora.alpha =
      static_cast<float>(peft.config.use_rslora ? peft.config.lora_alpha * std::sqrt(r) : peft.config.lora_alpha);
  for (const auto& pp : peft.pairs) {
    LoraPairData p;
    PLM_ASSIGN_OR_RETURN(p.target, PeftModuleToGgufTensor(lora.arch, pp.module));
    p.rank = peft.config.r;
    p.n_in = pp.a->shape[1];
    p.n_out = pp.b->shape[0];
    p.type_a = *StDTypeToDType(pp.a->dtype);  // OpenPeftAdapter checked the dtypes
    p.type_b = *StDTypeToDType(pp.b->dtype);
    p.a.assign(pp.a->bytes.begin(), pp.a->bytes.end());
    p.b.assign(pp.b->bytes.begin(), pp.b->bytes.end());
    lora.pairs.push_back(std::move(p));
  }
  // Check shapes before reordering rows, so a wrong base reports a shape mismatch rather than a head-count one.
  PLM_RETURN_IF_ERROR(CheckLoraAgainstBase(lora, base).WithContext("PEFT adapter '" + peft.dir + "'"));
  for (auto& p : lora.pairs) PLM_RETURN_IF_ERROR(ReorderB(&p, lora.arch, &base, /*to_gguf=*/true));
  std::stable_sort(lora.pairs.begin(), lora.pairs.end(), [&](const LoraPairData& x, const LoraPairData& y) {
    return LoraTargetSortKey(lora.arch, x.target) < LoraTargetSortKey(lora.arch, y.target);
  });
  return lora;
}

Result<LoraAdapterData> ReadGgufLora(const GgufFile& f) {
  const std::string& path = f.path();
  if (const GgufValue* t = f.Find("general.type"); t != nullptr) {
    if (t->type != GgufType::kString) return Corrupt("'" + path + "': general.type is not a string");
    if (t->str != "adapter") {
      return InvalidArgument("'" + path + "' is a " + std::string(t->str) + ", not a LoRA adapter (general.type)");
    }
  }
  if (const GgufValue* t = f.Find("adapter.type"); t != nullptr && (t->type != GgufType::kString || t->str != "lora")) {
    return Unsupported("'" + path + "' is not a LoRA adapter (adapter.type); only LoRA converts");
  }
  LoraAdapterData lora;
  PLM_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  lora.arch = std::string(arch);
  PLM_ASSIGN_OR_RETURN(double alpha, f.GetFloat("adapter.lora.alpha", 0.0));
  lora.alpha = static_cast<float>(alpha);

  std::map<std::string, size_t, std::less<>> by_target;
  std::vector<std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> infos;
  for (const auto& t : f.tensors()) {
    std::string_view n = t.name;
    const bool is_a = n.ends_with(".lora_a");
    if (!is_a && !n.ends_with(".lora_b")) {
      return Unsupported("'" + path + "' holds tensor '" + std::string(n) +
                         "', which is not a LoRA factor (.lora_a / .lora_b); is it a model rather than an adapter?");
    }
    if (t.type != DType::kF32 && t.type != DType::kF16 && t.type != DType::kBF16) {
      return Unsupported("adapter '" + path + "': tensor '" + std::string(n) + "' has type " +
                         std::string(DTypeName(t.type)) + " (f32, f16 and bf16 convert)");
    }
    if (t.n_dims != 2) return Corrupt("adapter '" + path + "': tensor '" + std::string(n) + "' is not 2-D");
    n.remove_suffix(7);
    auto [it, added] = by_target.emplace(std::string(n), lora.pairs.size());
    if (added) {
      lora.pairs.emplace_back().target = std::string(n);
      infos.emplace_back(nullptr, nullptr);
    }
    (is_a ? infos[it->second].first : infos[it->second].second) = &t;
  }
  if (lora.pairs.empty()) return Corrupt("adapter '" + path + "' holds no LoRA tensors");
  for (size_t i = 0; i < lora.pairs.size(); ++i) {
    LoraPairData& p = lora.pairs[i];
    const auto [a, b] = infos[i];
    if (a == nullptr || b == nullptr) {
      return Corrupt("adapter '" + path + "': '" + p.target + "' has only one of lora_a / lora_b");
    }
    if (a->ne[1] != b->ne[0]) {
      return Corrupt("adapter '" + path + "': '" + p.target + "' lora_a rank " + std::to_string(a->ne[1]) +
                     " differs from lora_b rank " + std::to_string(b->ne[0]));
    }
    p.rank = a->ne[1];
    p.n_in = a->ne[0];
    p.n_out = b->ne[1];
    p.type_a = a->type;
    p.type_b = b->type;
    p.a.assign(a->data, a->data + a->nbytes);
    p.b.assign(b->data, b->data + b->nbytes);
  }
  return lora;
}

Status CheckLoraAgainstBase(const LoraAdapterData& lora, const GgufFile& base) {
  PLM_RETURN_IF_ERROR(CheckBaseIsModel(base));
  PLM_ASSIGN_OR_RETURN(std::string_view arch, base.GetString("general.architecture"));
  if (arch != lora.arch) {
    return InvalidArgument("the adapter is for architecture '" + lora.arch + "' but model '" + base.path() + "' is '" +
                           std::string(arch) + "'");
  }
  for (const auto& p : lora.pairs) {
    const GgufTensorInfo* w = base.FindTensor(p.target);
    if (w == nullptr) {
      return InvalidArgument("the adapter targets '" + p.target + "', which model '" + base.path() +
                             "' does not have (adapter made for another model?)");
    }
    if (w->n_dims != 2 || w->ne[0] != p.n_in || w->ne[1] != p.n_out) {
      return InvalidArgument("the adapter's '" + p.target + "' maps " + std::to_string(p.n_in) + " -> " +
                             std::to_string(p.n_out) + " but model '" + base.path() + "' has shape " + ShapeString(*w) +
                             " (adapter made for another model?)");
    }
  }
  return Status::Ok();
}

Status WriteGgufLora(const LoraAdapterData& lora, const std::string& path) {
  GgufWriter w;
  // Keys as llama.cpp's convert_lora_to_gguf.py writes them (LoraModel.set_type / set_gguf_parameters).
  w.SetString("general.architecture", lora.arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", lora.alpha);
  for (const auto& p : lora.pairs) {
    PLM_RETURN_IF_ERROR(w.AddTensor(p.target + ".lora_a", p.type_a, {p.n_in, p.rank}, p.a.data(), p.a.size()));
    PLM_RETURN_IF_ERROR(w.AddTensor(p.target + ".lora_b", p.type_b, {p.rank, p.n_out}, p.b.data(), p.b.size()));
  }
  return w.WriteFile(path);
}

Status WritePeftAdapter(const LoraAdapterData& lora, const GgufFile* base, const std::string& dir,
                        const std::string& base_name) {
  if (lora.pairs.empty()) return InvalidArgument("the adapter holds no LoRA pairs");
  if (base != nullptr) PLM_RETURN_IF_ERROR(CheckLoraAgainstBase(lora, *base));
  std::set<int64_t> ranks;
  for (const auto& p : lora.pairs) ranks.insert(p.rank);
  if (ranks.size() != 1) {
    std::string list;
    for (int64_t r : ranks) list += (list.empty() ? "" : ", ") + std::to_string(r);
    return Unsupported("the adapter mixes ranks (" + list +
                       "); PEFT would need a rank_pattern, which is not supported yet");
  }
  PeftLoraConfig config;
  config.r = *ranks.begin();
  // alpha 0 means scale 1 in llama.cpp, which is lora_alpha = r in PEFT.
  config.lora_alpha = lora.alpha != 0.0f ? static_cast<double>(lora.alpha) : static_cast<double>(config.r);
  config.base_model_name_or_path = base_name;

  SafetensorsWriter st;
  st.SetMetadata("format", "pt");  // what PEFT's save_pretrained writes
  std::set<std::string> modules;
  for (const auto& src : lora.pairs) {
    PLM_ASSIGN_OR_RETURN(std::string module, GgufTensorToPeftModule(lora.arch, src.target));
    modules.insert(module.substr(module.rfind('.') + 1));
    if (!DTypeToStDType(src.type_a) || !DTypeToStDType(src.type_b)) {
      return Unsupported("'" + src.target + "' is stored as " + std::string(DTypeName(src.type_a)) + " / " +
                         std::string(DTypeName(src.type_b)) + "; only f32, f16 and bf16 convert to PEFT");
    }
    LoraPairData p = src;
    PLM_RETURN_IF_ERROR(ReorderB(&p, lora.arch, base, /*to_gguf=*/false));
    const std::string name = std::string(kPeftPrefix) + module;
    PLM_RETURN_IF_ERROR(
        st.AddTensor(name + ".lora_A.weight", *DTypeToStDType(p.type_a), {p.rank, p.n_in}, p.a.data(), p.a.size()));
    PLM_RETURN_IF_ERROR(
        st.AddTensor(name + ".lora_B.weight", *DTypeToStDType(p.type_b), {p.n_out, p.rank}, p.b.data(), p.b.size()));
  }
  config.target_modules.assign(modules.begin(), modules.end());

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    return IoError("cannot create directory '" + dir + "'" + (ec ? ": " + ec.message() : ""));
  }
  PLM_RETURN_IF_ERROR(st.WriteFile((fs::path(dir) / kPeftWeightsFile).string()));
  const std::string json = PeftLoraConfigJson(config);
  PLM_ASSIGN_OR_RETURN(AtomicFileWriter f, AtomicFileWriter::Create((fs::path(dir) / kPeftConfigFile).string()));
  PLM_RETURN_IF_ERROR(f.Write(json.data(), json.size()));
  return f.Commit();
}

}  // namespace pocketlm
