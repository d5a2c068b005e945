#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "convert/hf_convert.h"
#include "convert/hf_model.h"
#include "convert/hf_tokenizer.h"
#include "io/gguf/gguf_stream_writer.h"
#include "io/peft/lora_names.h"
#include "io/safetensors/safetensors_reader.h"
#include "tensor/half.h"

namespace pocketlm::convert {

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION, written by every convert_hf_to_gguf.py output

// llama_ftype numbers (general.file_type): ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_BF16 = 32.
uint32_t FileType(DType t) {
  return t == DType::kF32 ? 0 : t == DType::kF16 ? 1 : 32;
}

// The checkpoint's tensors by name, over one or more shards.
struct Weights {
  std::vector<SafetensorsFile> shards;
  std::map<std::string, std::pair<const SafetensorsFile*, const StTensor*>> by_name;
};

Result<Weights> OpenWeights(const std::string& dir) {
  std::vector<std::string> files;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    // {"metadata": {...}, "weight_map": {"<tensor>": "model-00001-of-00002.safetensors", ...}}
    PLM_ASSIGN_OR_RETURN(Json j, ReadJsonFile(index.string()));
    auto map = j.find("weight_map");
    if (map == j.end() || !map->is_object()) return Corrupt("'" + index.string() + "' has no weight_map object");
    std::set<std::string> unique;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string()) return Corrupt("'" + index.string() + "': weight_map values must be file names");
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        return Corrupt("'" + index.string() + "': shard name '" + f + "' is not a plain file name");
      }
      unique.insert(f);
    }
    for (const auto& f : unique) files.push_back((fs::path(dir) / f).string());
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) return NotFound("no *.safetensors weights in '" + dir + "'");
  }
  Weights w;
  w.shards.reserve(files.size());
  for (const auto& f : files) {
    PLM_ASSIGN_OR_RETURN(SafetensorsFile s, SafetensorsFile::Open(f));
    w.shards.push_back(std::move(s));
  }
  for (const auto& s : w.shards) {
    for (const auto& t : s.tensors()) {
      if (!w.by_name.emplace(t.name, std::make_pair(&s, &t)).second) {
        return Corrupt("tensor '" + t.name + "' appears in more than one shard ('" + s.path() + "')");
      }
    }
  }
  return w;
}

struct Planned {
  TensorMap map;
  const SafetensorsFile* file = nullptr;
  const StTensor* src = nullptr;
  std::vector<float> values;  // generated tensors (rope_freqs)
  DType type = DType::kF32;
};

// Checks every tensor the architecture needs against config.json's shapes, and that nothing is left unmapped.
Result<std::vector<Planned>> Plan(const Weights& w, const HfDims& d, DType dtype) {
  std::vector<Planned> plan;
  std::set<std::string> used;
  for (TensorMap& m : TensorMaps(d)) {
    auto it = w.by_name.find(m.hf);
    if (it == w.by_name.end()) {
      if (m.optional) continue;
      return Corrupt("the checkpoint lacks tensor '" + m.hf + "' (config.json: " + d.hf_class + ", " +
                     std::to_string(d.n_layer) + " layers)");
    }
    const auto& [file, t] = it->second;
    if (t->shape != m.hf_shape) {
      return Corrupt("tensor '" + m.hf + "' in '" + file->path() + "' has shape " + StShapeString(t->shape) +
                     " but config.json implies " + StShapeString(m.hf_shape));
    }
    PLM_RETURN_IF_ERROR(file->CheckUsable(*t));
    used.insert(m.hf);
    Planned p;
    p.type = m.hf_shape.size() == 1 ? DType::kF32 : dtype;
    p.map = std::move(m);
    p.file = file;
    p.src = t;
    plan.push_back(std::move(p));
  }
  for (const auto& [name, where] : w.by_name) {
    if (used.count(name) != 0) continue;
    // Buffers some checkpoints carry (convert_hf_to_gguf.py skips them too), and a tied lm_head duplicate.
    if (name.ends_with(".rotary_emb.inv_freq")) continue;
    if (name == "lm_head.weight" && d.tied) continue;
    return Unsupported("cannot map tensor '" + name + "' in '" + where.first->path() + "' of a " + d.hf_class +
                       " checkpoint to GGUF");
  }
  return plan;
}

Status ApplyTransform(const Planned& p, const HfDims& d, std::vector<float>* v) {
  switch (p.map.transform) {
    case Transform::kNone: return Status::Ok();
    case Transform::kAddOne:
      // Gemma2Model.modify_tensors adds 1 in the tensor's dtype after bf16 was widened to f32; an f16 tensor stays
      // f16, so the sum is rounded to f16 as torch does.
      for (float& x : *v) {
        x += 1.0f;
        if (p.src->dtype == StDType::kF16) x = F16ToF32(F32ToF16(x));
      }
      return Status::Ok();
    case Transform::kPermuteQ:
    case Transform::kPermuteK: {
      const int64_t heads = p.map.transform == Transform::kPermuteQ ? d.n_head : d.n_head_kv;
      const int64_t rows = p.map.hf_shape[0];
      const size_t row_bytes = sizeof(float) * static_cast<size_t>(p.map.hf_shape.size() == 2 ? p.map.hf_shape[1] : 1);
      std::vector<float> out(v->size());
      PLM_RETURN_IF_ERROR(PermuteRopeRows(reinterpret_cast<const uint8_t*>(v->data()),
                                          reinterpret_cast<uint8_t*>(out.data()), rows, row_bytes, heads,
                                          /*to_gguf=*/true));
      *v = std::move(out);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status Emit(GgufStreamWriter& w, DType type, const std::vector<float>& v) {
  if (type == DType::kF32) return w.Append(v.data(), v.size() * sizeof(float));
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = type == DType::kF16 ? F32ToF16(v[i]) : F32ToBF16(v[i]);
  return w.Append(h.data(), h.size() * sizeof(uint16_t));
}

}  // namespace

Result<DType> ParseOutType(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  return InvalidArgument("unknown output type '" + name + "'; valid: f32, f16, bf16");
}

Result<ImportSummary> ImportHfModel(const ImportOptions& o) {
  std::error_code ec;
  if (!fs::is_directory(o.dir, ec)) return NotFound("'" + o.dir + "' is not a directory");
  if (fs::is_directory(o.out_path, ec)) return InvalidArgument("output '" + o.out_path + "' is a directory");
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kBF16) {
    return InvalidArgument("output type must be f32, f16 or bf16");
  }
  const std::string cfg_path = (fs::path(o.dir) / "config.json").string();
  auto cfg = ReadJsonFile(cfg_path);
  if (!cfg.ok()) {
    if (cfg.status().code() == ErrorCode::kNotFound) {
      return NotFound("'" + cfg_path + "' does not exist (is '" + o.dir + "' a Hugging Face model directory?)");
    }
    return cfg.status();
  }
  const std::string where = "'" + cfg_path + "'";
  try {
    PLM_ASSIGN_OR_RETURN(HfDims d, ParseHfConfig(*cfg, where));
    PLM_ASSIGN_OR_RETURN(KvList arch_kv, HfConfigToGguf(*cfg, d, FileType(o.dtype), where));
    PLM_ASSIGN_OR_RETURN(std::vector<float> rope_freqs, HfRopeFreqs(*cfg, d, where));
    PLM_ASSIGN_OR_RETURN(Weights weights, OpenWeights(o.dir));
    PLM_ASSIGN_OR_RETURN(std::vector<Planned> plan, Plan(weights, d, o.dtype));
    PLM_ASSIGN_OR_RETURN(KvList tok_kv, ImportHfTokenizer({o.dir, d.n_vocab, d.arch}));
    if (!rope_freqs.empty()) {
      Planned p;
      p.map.gguf = "rope_freqs.weight";
      p.map.hf_shape = {static_cast<int64_t>(rope_freqs.size())};
      p.values = std::move(rope_freqs);
      plan.insert(plan.begin(), std::move(p));  // generate_extra_tensors come first
    }

    KvList kv;
    kv.Str("general.architecture", d.arch);
    // general.name: the last part of config.json's _name_or_path (what save_pretrained recorded), else the
    // directory's name. llama.cpp keys some tokenizer attributes on it (Phi-3's rstrip), so it matters.
    std::string name = fs::path(JsonString(*cfg, "_name_or_path").value_or("")).filename().string();
    if (name.empty()) name = fs::path(o.dir).filename().string();
    if (name.empty()) name = fs::path(o.dir).parent_path().filename().string();
    kv.Str("general.name", name);
    kv.Append(std::move(arch_kv));
    kv.U32("general.quantization_version", kQuantizationVersion);
    kv.Append(std::move(tok_kv));

    std::vector<GgufTensorDecl> decls;
    for (const Planned& p : plan) {
      decls.push_back({p.map.gguf, p.type, std::vector<int64_t>(p.map.hf_shape.rbegin(), p.map.hf_shape.rend())});
    }
    PLM_ASSIGN_OR_RETURN(GgufStreamWriter w,
                         GgufStreamWriter::Create(o.out_path, kGgufDefaultAlignment, kv.kvs(), std::move(decls)));
    ImportSummary s;
    for (size_t i = 0; i < plan.size(); ++i) {
      const Planned& p = plan[i];
      std::vector<float> v = p.values;
      if (p.src != nullptr) {
        PLM_ASSIGN_OR_RETURN(v, p.file->ReadF32(*p.src));
        PLM_RETURN_IF_ERROR(ApplyTransform(p, d, &v).WithContext("tensor '" + p.map.hf + "'"));
      }
      PLM_RETURN_IF_ERROR(Emit(w, p.type, v));
      s.bytes_out += w.TensorBytes(i);
    }
    PLM_RETURN_IF_ERROR(w.Commit());
    s.hf_class = d.hf_class;
    s.arch = d.arch;
    s.n_tensors = plan.size();
    s.n_shards = weights.shards.size();
    s.n_vocab = d.n_vocab;
    return s;
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(where + ": unexpected JSON content (" + e.what() + ")");
  }
}

}  // namespace pocketlm::convert
