// Hugging Face model directories <-> GGUF models, for LlamaForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM and
// Gemma2ForCausalLM (tables in hf_model.h, tokenizers in hf_tokenizer.h).
//
// Import streams: the GGUF header, metadata and tensor directory are written first, then one tensor at a time is
// read from the (memory-mapped) safetensors shards, transformed and appended, so memory stays near the largest
// tensor. Output goes to a temp file renamed at the end: any error leaves no output file behind.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "tensor/dtype.h"

namespace pocketlm::convert {

struct ImportOptions {
  std::string dir;       // config.json, *.safetensors (+ model.safetensors.index.json), tokenizer.json, ...
  std::string out_path;  // GGUF to write
  // Type of 2-D weights (f32, f16 or bf16; convert_hf_to_gguf.py's --outtype, default f16). Norms and biases
  // are always f32, as llama.cpp's converter stores them.
  DType dtype = DType::kF16;
};

struct ImportSummary {
  std::string hf_class, arch;
  size_t n_tensors = 0;
  size_t n_shards = 0;
  int64_t n_vocab = 0;
  uint64_t bytes_out = 0;  // tensor data
};

Result<ImportSummary> ImportHfModel(const ImportOptions& o);

// Writes model.safetensors, config.json, generation_config.json, tokenizer.json and tokenizer_config.json for an
// F32 / F16 / BF16 GGUF model into `dir` (created if missing). Files are written only after everything converted;
// a failure while writing removes the files already written.
struct ExportSummary {
  std::string hf_class;
  size_t n_tensors = 0;
};
Result<ExportSummary> ExportHfModel(const std::string& gguf_path, const std::string& dir);

// "f32" / "f16" / "bf16" -> type; InvalidArgument otherwise.
Result<DType> ParseOutType(const std::string& name);

}  // namespace pocketlm::convert
