// A loaded model: the mapped GGUF file, its config, weight views and tokenizer. Immutable after Load and
// shareable between contexts (requests, generations), which own their KV caches and scratch memory.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

struct ModelLoadOptions {
  // Interleave q4_0 / q5_0 / q8_0 / q4_K / q6_K weights 16 rows at a time for the faster kernels
  // (tensor/quant/interleave.h) when the CPU has them. Only for models that run inference: training and merging read
  // GGUF rows. The rewritten pages are anonymous memory: same peak RSS, but the kernel can no longer drop them and
  // re-read the file under memory pressure, and processes no longer share them.
  bool interleave_for_inference = false;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> Load(const std::string& path, const ModelLoadOptions& options = {});

  const GgufFile& file() const { return file_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // ModelLineage of the file, computed once at load (adapters are checked against it at every switch).
  const std::string& lineage() const { return lineage_; }

 private:
  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string lineage_;
};

}  // namespace pocketlm
