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

class Model {
 public:
  static Result<std::unique_ptr<Model>> Load(const std::string& path);

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
