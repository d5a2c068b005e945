// GGUF -> Hugging Face directory: the inverse of ImportHfModel for F32 / F16 / BF16 models. 2-D weights keep their
// type (bytes are moved, llama q/k rows put back in HF order); norms and biases are written as F32, Gemma's norms
// with the 1 taken off again.
#include <cstring>
#include <filesystem>

#include "convert/hf_convert.h"
#include "convert/hf_model.h"
#include "convert/hf_tokenizer.h"
#include "io/peft/lora_names.h"
#include "io/safetensors/safetensors_writer.h"

namespace pocketlm::convert {

namespace {

namespace fs = std::filesystem;

Status CheckShape(const GgufTensorInfo& t, const TensorMap& m, const std::string& path) {
  const std::vector<int64_t> ne(m.hf_shape.rbegin(), m.hf_shape.rend());
  bool ok = t.n_dims == static_cast<int>(ne.size());
  for (size_t i = 0; ok && i < ne.size(); ++i) ok = t.ne[i] == ne[i];
  if (!ok) {
    return Corrupt("'" + path + "': tensor '" + m.gguf + "' has shape " + ShapeString(t) + ", expected " +
                   StShapeString(ne));
  }
  return Status::Ok();
}

Status AddTensor(SafetensorsWriter& st, const GgufTensorInfo& t, const TensorMap& m, const HfDims& d,
                 const std::string& path) {
  const std::optional<StDType> st_type = DTypeToStDType(t.type);
  if (!st_type) {
    return Unsupported("'" + path + "': tensor '" + m.gguf + "' is " + std::string(DTypeName(t.type)) +
                       "; export needs an F32, F16 or BF16 model (convert it to F16 first)");
  }
  if (m.hf_shape.size() == 1 && t.type != DType::kF32) {
    return Unsupported("'" + path + "': vector tensor '" + m.gguf + "' is not f32");
  }
  // Views into the mapped GGUF file or tensors produced while the file is written: memory for one tensor.
  switch (m.transform) {
    case Transform::kNone: return st.AddTensorView(m.hf, *st_type, m.hf_shape, t.data, t.nbytes);
    case Transform::kAddOne:
      return st.AddTensorDeferred(m.hf, StDType::kF32, m.hf_shape, t.nbytes, [&t](uint8_t* dst) {
        const auto n = static_cast<size_t>(t.n_elements());
        for (size_t i = 0; i < n; ++i) {
          float x;
          std::memcpy(&x, t.data + i * sizeof(float), sizeof(float));
          x -= 1.0f;
          std::memcpy(dst + i * sizeof(float), &x, sizeof(float));
        }
        return Status::Ok();
      });
    case Transform::kPermuteQ:
    case Transform::kPermuteK: {
      const int64_t heads = m.transform == Transform::kPermuteQ ? d.n_head : d.n_head_kv;
      const int64_t rows = m.hf_shape[0];
      return st.AddTensorDeferred(m.hf, *st_type, m.hf_shape, t.nbytes, [&t, rows, heads](uint8_t* dst) {
        return PermuteRopeRows(t.data, dst, rows, t.nbytes / static_cast<size_t>(rows), heads, /*to_gguf=*/false);
      });
    }
  }
  return Status::Ok();
}

std::string TorchDType(DType t) {
  return t == DType::kF16 ? "float16" : t == DType::kBF16 ? "bfloat16" : "float32";
}

}  // namespace

Result<ExportSummary> ExportHfModel(const std::string& gguf_path, const std::string& dir) {
  PLM_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  PLM_ASSIGN_OR_RETURN(HfDims d, DimsFromGguf(f));
  SafetensorsWriter st;
  st.SetMetadata("format", "pt");  // what transformers' save_pretrained writes; from_pretrained checks it
  ExportSummary s;
  s.hf_class = d.hf_class;
  for (const TensorMap& m : TensorMaps(d)) {
    const GgufTensorInfo* t = f.FindTensor(m.gguf);
    if (t == nullptr) {
      if (m.optional) continue;
      return Corrupt("'" + gguf_path + "' lacks tensor '" + m.gguf + "'");
    }
    PLM_RETURN_IF_ERROR(CheckShape(*t, m, gguf_path));
    PLM_RETURN_IF_ERROR(AddTensor(st, *t, m, d, gguf_path));
    ++s.n_tensors;
  }
  const std::string torch_dtype = TorchDType(f.FindTensor("token_embd.weight")->type);
  std::string config, generation, tok_json, tok_config;
  try {
    PLM_ASSIGN_OR_RETURN(OrderedJson cfg, GgufToHfConfig(f, d, torch_dtype));
    config = cfg.dump(2) + "\n";
    OrderedJson gen;
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
      if (cfg.contains(k)) gen[k] = cfg[k];
    }
    generation = gen.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    return Corrupt("'" + gguf_path + "': cannot write config.json (" + e.what() + ")");
  }
  PLM_ASSIGN_OR_RETURN(HfTokenizerText tok, ExportHfTokenizer(f));

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("cannot create directory '" + dir + "': " + ec.message());
  const std::vector<std::pair<std::string, const std::string*>> texts = {
      {"config.json", &config},
      {"generation_config.json", &generation},
      {"tokenizer.json", &tok.tokenizer_json},
      {"tokenizer_config.json", &tok.tokenizer_config_json}};
  std::vector<fs::path> written;
  auto undo = [&](const Status& error) {
    for (const auto& p : written) fs::remove(p, ec);
    return error;
  };
  const fs::path weights = fs::path(dir) / "model.safetensors";
  if (Status w = st.WriteFile(weights.string()); !w.ok()) return undo(w);
  written.push_back(weights);
  for (const auto& [name, text] : texts) {
    const fs::path p = fs::path(dir) / name;
    if (Status w = WriteTextFile(p.string(), *text); !w.ok()) return undo(w);
    written.push_back(p);
  }
  return s;
}

}  // namespace pocketlm::convert
