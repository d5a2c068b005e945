// `pocketlm adapter merge`: LoRA adapters folded into a copy of their base model, W' = W + sum_i s_i B_i A_i
// (s_i = user scale * alpha / r, as LoraAdapter::EffectiveScale), so the result runs with no adapter at all.
//
//  - Every tensor an adapter targets is rewritten in its own storage type: F32 exactly, F16/BF16 rounded to
//    nearest even, a quantized type (q8_0, q4_0, q4_K, ...) dequantized, merged in f32 and requantized with the
//    reference quantizer of src/tensor/quant (what `pocketlm quantize` uses without an importance matrix). All
//    other tensors and all metadata are copied byte for byte, in the input's order.
//  - Tensors are streamed one at a time, a chunk of rows at a time (memory stays near one tensor's worth of f32
//    rows plus the adapters' A factors as f32), to a temp file that only becomes the output at the end.
//  - Requantizing can wash out a low-rank update that is small next to the quantization step, so before the
//    output is accepted the merge is measured against the adapters applied at run time (MeasureMerge). A merge
//    into a quantized base that keeps less than `min_kept` of the adapters' effect is refused (no output file)
//    unless forced; F32/F16/BF16 merges are measured too but never refused.
//
// This library sits above plm_train (the measurement runs the model and reuses eval's KL divergence); the weight
// pass alone (WriteMergedModel) needs only the GGUF reader/writer and the quant converters.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "lora/adapter.h"
#include "model/model.h"

namespace pocketlm {

// How much of the adapters' effect on the next-token distribution the merged model keeps, on one text.
//   ref    = the base with the adapters applied at run time (what the user trained and wants);
//   base   = the base alone;     merged = the merged model alone.
//   kl_base   = mean over positions of KL(P_ref || P_base):   the adapters' whole effect;
//   kl_merged = mean over positions of KL(P_ref || P_merged): what the merge lost of it;
//   kept      = 1 - kl_merged / kl_base, clamped to [0, 1] (below 0 the merge is farther from ref than the base).
// KL(P_ref || P_x) = sum_v P_ref(v) log(P_ref(v) / P_x(v)): the reference comes first, the direction of
// `pocketlm eval --kl` (whose code, train/eval.h KlDivergence, computes it) and of llama.cpp's `perplexity
// --kl-divergence`, so the numbers compare with theirs. The expectation runs over the adapted model's own
// predictions: it weighs the tokens the adapter made likely (a merge that forgets them pays in full), while a
// merged model that puts a little mass on tokens the reference finds unlikely is not punished much for it.
struct MergeQuality {
  double kl_base = 0;    // nats per position
  double kl_merged = 0;  // nats per position
  int64_t n_positions = 0;
  double kept = 1;         // in [0, 1]
  bool no_effect = false;  // kl_base is too small to divide by: the adapters do not change this text's
                           // predictions measurably; kept is then 1 if kl_merged is as small, else 0
  double top1_merged = 0;  // fraction of positions where merged and ref pick the same most likely token
  double top1_base = 0;    // the same for base and ref
};

struct MergeOptions {
  int n_threads = 2;      // counting the caller
  std::string text;       // measurement text; empty: kDefaultMergeText
  double min_kept = 0.9;  // a merge that requantizes keeps at least this much of the effect, or is refused
  bool force = false;     // write a requantized merge below min_kept anyway
  int measure_ctx = 512;  // window of the measurement (at most the model's training context)
};

struct MergeSummary;

struct MergeProgress {
  enum class Stage {
    kTensor,     // after a chunk of rows and at the end of each tensor
    kMeasuring,  // the merged file is written; the measurement starts
    kMeasured,   // `summary` is set; the decision (accept or refuse) follows
  };
  Stage stage = Stage::kTensor;
  size_t tensor_index = 0;  // kTensor: the tensor being worked on (0-based, output order)
  size_t n_tensors = 0;
  std::string_view tensor_name;
  bool merged = false;       // this tensor receives low-rank terms
  bool tensor_done = false;  // this report ends the tensor
  uint64_t bytes_done = 0;   // input tensor bytes processed so far, all tensors
  uint64_t bytes_total = 0;
  // kMeasured: what was merged and its quality (file_bytes and seconds not yet set)
  const MergeSummary* summary = nullptr;
};
// Called on the calling thread.
using MergeProgressFn = std::function<void(const MergeProgress&)>;

struct MergeSummary {
  size_t n_tensors = 0;
  size_t n_merged = 0;              // tensors that received low-rank terms
  std::vector<DType> merged_types;  // their storage types, each once, in order of appearance
  bool requantized = false;         // some merged tensor has a quantized type
  MergeQuality quality;
  bool below_min_kept = false;  // requantized, kept < min_kept, written because forced
  uint64_t file_bytes = 0;
  double seconds = 0;
};

// An ordinary English paragraph of about 400 tokens (Llama-2's vocabulary), the default measurement text.
extern const char* const kDefaultMergeText;

// The weight pass alone: writes `out_path` (atomically) from `base` with `adapters` folded in, no measurement.
// Every adapter is checked against the base first (LoraAdapter::CheckAgainst). Errors: a target tensor whose type
// pocketlm cannot read or write, non-finite merged values, I/O.
Status WriteMergedModel(const GgufFile& base, const std::vector<ActiveLora>& adapters, const std::string& out_path,
                        int n_threads, const MergeProgressFn& progress = {});

// The measurement of MergeQuality on `text` (tokenized with the base's tokenizer, with BOS where the vocabulary
// asks for it, cut into windows of `n_ctx` tokens, at most the base's training context). `base` and `merged` must share
// the vocabulary.
Result<MergeQuality> MeasureMerge(const Model& base, const Model& merged, const std::vector<ActiveLora>& adapters,
                                  const std::string& text, int n_ctx, int n_threads);

// The whole command: checks, WriteMergedModel to a temp file next to `out_path`, MeasureMerge, then either renames
// it to `out_path` or removes it and returns InvalidArgument saying how much of the effect survived (a merge that
// requantizes below o.min_kept without o.force). On any error nothing is left at `out_path` (an existing file
// there is kept as it was). Refuses out_path == the base or an adapter (the same file by any path).
Result<MergeSummary> MergeAdapters(const std::string& base_path, const std::vector<ActiveLora>& adapters,
                                   const std::string& out_path, const MergeOptions& o,
                                   const MergeProgressFn& progress = {});

}  // namespace pocketlm
