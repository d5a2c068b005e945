// Full fine-tuning: every weight of the model trainable, as f32 master copies (the base file stays untouched).
// The TrainGraph reads the masters through an ordinary ModelWeights whose views point into them, so the forward
// and backward passes are the same code as for LoRA; each tensor also has a gradient buffer, found by the
// master's data pointer. Meant for small models (pocketlm's own base): memory is 16 bytes per parameter
// (value, gradient, two AdamW moments).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace pocketlm {

class FullParams {
 public:
  // Dequantizes every weight of `model` to f32 (any storage type).
  static Result<std::unique_ptr<FullParams>> Create(const Model& model);

  const ModelWeights& weights() const { return weights_; }
  // Gradient buffer of the master tensor starting at `data`, or null (not trainable: rope_freqs).
  float* GradFor(const uint8_t* data);
  // Every tensor, weight decay on matrices only (not on norms and biases, as is common practice).
  std::vector<ParamRef> Params();
  void ZeroGrad();
  size_t n_params() const;

  // The trained model: the base's metadata and tokenizer with every tensor in f32 (general.file_type 0).
  // Atomic: temp file, then rename.
  Status WriteGguf(const std::string& path, const Model& base) const;

  struct Tensor {
    std::string name;  // GGUF name
    std::vector<int64_t> ne;
    std::vector<float> value, grad;
    bool matrix = false;
    bool trainable = true;
  };
  const std::vector<std::unique_ptr<Tensor>>& tensors() const { return tensors_; }

 private:
  FullParams() = default;
  std::vector<std::unique_ptr<Tensor>> tensors_;  // stable addresses: views point into them
  std::unordered_map<const uint8_t*, Tensor*> by_data_;
  ModelWeights weights_;
};

}  // namespace pocketlm
