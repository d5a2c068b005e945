// Trainable LoRA factors over a frozen base (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
// Models"). Each adapted projection y = W x gets y = W x + s * B (A dropout(x)) with
//   A: (rank, n_in)  initialised as PEFT does: kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(n_in), 1/sqrt(n_in))
//   B: (n_out, rank) initialised to zero, so training starts exactly at the base model
//   s = alpha / rank, or alpha / sqrt(rank) with rsLoRA (Kalajdzievski 2023, "A Rank Stabilization Scaling Factor")
// The factors are f32 master weights owned here; the base tensors stay mmapped and read-only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "tensor/tensor_view.h"

namespace pocketlm {

// Projections a LoRA can target, as bits.
enum LoraTarget : uint32_t {
  kLoraQ = 1u << 0,
  kLoraK = 1u << 1,
  kLoraV = 1u << 2,
  kLoraO = 1u << 3,
  kLoraGate = 1u << 4,
  kLoraUp = 1u << 5,
  kLoraDown = 1u << 6,
  kLoraAllLinear = 0x7fu,
};

// Parses "q,k,v,o,gate,up,down" (also PEFT's q_proj, ..., down_proj) or "all-linear".
Result<uint32_t> ParseLoraTargets(std::string_view list);
// The inverse, for metadata and messages: "q,k,v,o,gate,up,down".
std::string LoraTargetsToString(uint32_t targets);

struct LoraConfig {
  int rank = 16;
  float alpha = 32.0f;
  float dropout = 0.0f;  // probability of zeroing an input element of A (PEFT's lora_dropout)
  bool rslora = false;
  uint32_t targets = kLoraAllLinear;
  uint64_t seed = 42;
};

// One adapted projection.
struct LoraModule {
  std::string base_name;  // GGUF tensor name, e.g. "blk.3.attn_q.weight"
  TensorView base;
  int64_t n_in = 0, n_out = 0, rank = 0;
  float scale = 0.0f;  // s above
  int layer = 0;
  int index = 0;         // position in LoraSet::modules(), keys the dropout masks
  int slot = 0;          // position among the modules of its layer (scratch buffers are per slot)
  std::vector<float> a;  // (rank, n_in)
  std::vector<float> b;  // (n_out, rank)
  std::vector<float> grad_a, grad_b;
};

class LoraSet {
 public:
  // Adds a module for every targeted projection of `model`. Fused projections (Phi-3 attn_qkv, ffn_up holding
  // [gate; up]) are adapted as a whole when any of their parts is targeted, as PEFT does for qkv_proj/gate_up_proj.
  static Result<LoraSet> Create(const Model& model, const LoraConfig& config);

  const LoraConfig& config() const { return config_; }
  std::vector<LoraModule>& modules() { return modules_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  int max_slots() const { return max_slots_; }
  // The module adapting the base tensor whose data starts at `base_data`, or null.
  LoraModule* Find(const uint8_t* base_data);
  void ZeroGrad();
  size_t n_params() const;

  // Writes the adapter in llama.cpp's GGUF LoRA layout (see src/lora/adapter.h), plus pocketlm's training
  // metadata (rank, targets, rsLoRA, base fingerprint). Atomic: temp file, then rename. `type` (f32, f16 or bf16)
  // stores A and B: f16 halves the file and the bytes a decode step reads for the adapter (llama.cpp's
  // convert_lora_to_gguf.py writes f16 by default); training keeps f32 masters either way.
  Status WriteGguf(const std::string& path, const Model& base, DType type = DType::kF32) const;

 private:
  LoraConfig config_;
  std::vector<LoraModule> modules_;
  int max_slots_ = 0;
  std::unordered_map<const uint8_t*, size_t> by_base_;
};

}  // namespace pocketlm
