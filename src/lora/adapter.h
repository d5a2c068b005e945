// LoRA adapters in llama.cpp's GGUF layout (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").
// For a base weight "<name>" the file holds "<name>.lora_a" with ggml ne = [n_in, r] (r rows of n_in) and
// "<name>.lora_b" with ne = [r, n_out]. Applied as y = W x + s * B (A x) with s = scale * alpha / r
// (scale chosen at run time; when alpha is 0 or absent, s = scale, as llama.cpp does). Base weights are never
// modified.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

struct LoraPair {
  TensorView a;  // (n_in -> r)
  TensorView b;  // (r -> n_out), as stored in the file
  // B transposed: r rows of n_out values (ne = [n_out, r]) in b's type, f32 when b is quantized. Inference
  // multiplies with this one (MatMulTransposedAccumulateRows): a row of B holds only r values, and its dot product
  // per output would cost a horizontal sum each. Made once at load: the adapter's memory grows by B's size.
  TensorView b_t;
  std::vector<uint8_t> b_t_data;
  int64_t rank() const { return a.n_out(); }
};

class LoraAdapter {
 public:
  static Result<std::unique_ptr<LoraAdapter>> Load(const std::string& path);

  // Checks architecture, that every target tensor exists in the base, that the shapes fit, and - when the adapter
  // records its base's lineage (pocketlm.base.lineage, written by pocketlm finetune) - that the base is that model
  // or a quantization of it. `base_lineage`: ModelLineage(base) when the caller has it (Model::lineage()), else
  // computed here.
  Status CheckAgainst(const GgufFile& base, const std::string* base_lineage = nullptr) const;
  // The base lineage the adapter was trained on; empty when it does not record one (e.g. converted from PEFT).
  const std::string& base_lineage() const { return base_lineage_; }

  const std::string& path() const { return file_.path(); }
  // Bytes this adapter keeps in memory: its tensors (mapped from the file) and the transposed B factors.
  size_t ResidentBytes() const;
  float alpha() const { return alpha_; }
  const std::string& arch() const { return arch_; }
  const std::unordered_map<std::string_view, LoraPair>& pairs() const { return pairs_; }
  // Effective multiplier for a pair at a user scale.
  float EffectiveScale(const LoraPair& p, float user_scale) const {
    return alpha_ != 0.0f ? user_scale * alpha_ / static_cast<float>(p.rank()) : user_scale;
  }

 private:
  GgufFile file_;
  float alpha_ = 0.0f;
  std::string arch_;
  std::string base_lineage_;
  std::unordered_map<std::string_view, LoraPair> pairs_;  // key: base tensor name
};

// One adapter switched on for a generation, with its run-time scale.
struct ActiveLora {
  const LoraAdapter* adapter = nullptr;
  float scale = 1.0f;
};

// The low-rank terms that apply to each base weight, resolved once per adapter set: linear() looks up its weight
// here by data pointer, so switching adapters never touches the base.
struct LoraTerm {
  const LoraPair* pair;
  float scale;  // effective: user scale * alpha / r
};
using LoraIndex = std::unordered_map<const uint8_t*, std::vector<LoraTerm>>;

}  // namespace pocketlm
