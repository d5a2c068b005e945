// `pocketlm quantize`: converts a GGUF model from F32/F16/BF16 (or, when asked, an already quantized one) to a
// preset's mix of storage types, as llama.cpp's llama_model_quantize() does, with or without an importance matrix:
//  - metadata is copied in order, then `general.quantization_version` (2) and `general.file_type` (the preset's
//    llama_ftype) are set (moved to the end, as gguf_set_val does), and split keys are dropped;
//  - tensors are written in llama.cpp's order: tensors outside blocks first, then block by block (blk.N by N),
//    by name within each group; 1-D tensors and norms keep their type;
//  - a tensor's rows are quantized in parallel, a chunk of rows at a time, and streamed to the output, so memory
//    stays at a few chunk buffers whatever the model size (the input is mapped, not read);
//  - with an importance matrix, every tensor that has an entry is quantized with it (QuantizeRowWeighted), the
//    matrix is recorded in the quantize.imatrix.* keys as llama-quantize records it, and types that need a matrix
//    (IQ1/IQ2) are refused for tensors without an entry;
//  - the output goes to a temp file renamed at the end: an error never leaves a partial file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "quantize/imatrix_file.h"
#include "quantize/presets.h"

namespace pocketlm::quantize {

struct QuantizeOptions {
  std::string preset = "Q4_K_M";  // a preset name (FindPreset)
  int n_threads = 2;              // counting the caller
  bool allow_requantize = false;  // accept quantized input tensors (dequantized first: quality suffers)
  bool pure = false;              // every quantizable tensor gets the preset's base type (no per-tensor rules)
  TypeOverrides overrides;
  const ImportanceMatrix* imatrix = nullptr;  // owned by the caller; null: none
  std::string imatrix_name;                   // recorded as quantize.imatrix.file (llama-quantize: the path given)
};

struct TensorPlan {
  const GgufTensorInfo* src = nullptr;
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  DType from = DType::kF32;
  DType to = DType::kF32;
  bool convert = false;            // false: bytes copied as they are
  bool fallback = false;           // the preset's type did not fit the row length (see note)
  const float* weights = nullptr;  // importance per column, (n_mat, ne[0]) for ne[2] matrices; null: none
  std::string note;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

struct QuantizePlan {
  const Preset* preset = nullptr;
  std::vector<TensorPlan> tensors;  // in output order
  uint64_t bytes_in = 0;            // tensor data, without metadata or padding
  uint64_t bytes_out = 0;
  uint64_t n_weights = 0;
};

// Decides every tensor's type without writing anything. Errors: unknown preset (the message lists the valid
// ones), quantized input without allow_requantize, a row length no type fits, a type pocketlm cannot write.
Result<QuantizePlan> PlanQuantization(const GgufFile& in, const QuantizeOptions& o);

// llama.cpp's tensor order: non-block tensors, then blk.N in increasing N, by name within each group.
bool LlamaTensorOrder(std::string_view a, std::string_view b);

struct QuantizeProgress {
  size_t tensor_index = 0;  // the tensor being worked on (0-based)
  size_t n_tensors = 0;
  const TensorPlan* tensor = nullptr;
  bool tensor_done = false;  // this report ends the tensor
  uint64_t bytes_done = 0;   // input tensor bytes processed so far, all tensors
  uint64_t bytes_total = 0;
};
// Called on the calling thread after each chunk and at the end of each tensor.
using ProgressFn = void (*)(const QuantizeProgress& p, void* user_data);

struct QuantizeSummary {
  const Preset* preset = nullptr;
  uint64_t bytes_in = 0;  // tensor data
  uint64_t bytes_out = 0;
  uint64_t file_bytes_out = 0;
  uint64_t n_weights = 0;
  size_t n_tensors = 0;
  size_t n_converted = 0;
  size_t n_fallback = 0;
  double seconds = 0;
  double bits_per_weight_in() const { return n_weights ? 8.0 * double(bytes_in) / double(n_weights) : 0.0; }
  double bits_per_weight_out() const { return n_weights ? 8.0 * double(bytes_out) / double(n_weights) : 0.0; }
};

// Reads `in_path`, writes `out_path`. Also refuses in == out (the same file by any path).
Result<QuantizeSummary> QuantizeModel(const std::string& in_path, const std::string& out_path, const QuantizeOptions& o,
                                      ProgressFn progress = nullptr, void* user_data = nullptr);

}  // namespace pocketlm::quantize
