// Explicit forward and backward passes of the whole model over one training sequence, llm.c style: buffers are
// preallocated for the longest sequence, only each layer's input is kept during the forward pass (gradient
// checkpointing) and a layer is recomputed right before its backward pass. The same ModelConfig switches as
// the inference context drive it, so every family (llama, qwen2, phi3, gemma2) trains through one code path.
// Frozen weights are read in their storage type: the backward pass multiplies by the same dequantized blocks
// the forward pass uses (QLoRA, Dettmers et al. 2023).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "ops/cross_entropy.h"
#include "ops/distill_loss.h"
#include "train/full_params.h"
#include "train/lora_set.h"

namespace pocketlm {

// One training sequence of T tokens (T <= max_seq_len), possibly several packed examples.
struct SequenceView {
  const int32_t* tokens = nullptr;     // (T) input tokens
  const int32_t* targets = nullptr;    // (T) token to predict after position t, or < 0 for no loss there
  const int32_t* seg_start = nullptr;  // (T) first position of t's example (null: one example)
  const int32_t* pos = nullptr;        // (T) RoPE position of t within its example (null: t)
  int T = 0;
};

class TrainGraph {
 public:
  // With activation_budget > 0 and every layer's activations fitting in it (bytes), all layers keep their
  // activations and the backward pass needs no recomputation (one forward pass less per step); otherwise only each
  // layer's input is kept and layers are recomputed during the backward pass.
  static Result<std::unique_ptr<TrainGraph>> Create(const Model& model, int max_seq_len, ThreadPool* pool,
                                                    size_t activation_budget = 0);
  // Activation bytes of one layer at the longest sequence (without LoRA intermediates).
  static size_t LayerActivationBytes(const ModelConfig& c, int max_seq_len);
  bool recomputes() const { return acts_.size() == 1 && model_.config().n_layer > 1; }

  // Loss of one sequence under `loras` (may be null: the bare base), no gradients.
  Result<CrossEntropyResult> Forward(const SequenceView& seq, LoraSet* loras);

  // Forward and backward: returns the summed loss; the LoRA gradients accumulate (+=) d(grad_scale * loss_sum).
  // `dropout_key` selects the dropout masks (one per optimizer micro-step) when the set has dropout > 0.
  // With `teacher` (rows for this sequence) the loss is the distillation loss of ops/distill_loss.h under `distill`.
  Result<CrossEntropyResult> ForwardBackward(const SequenceView& seq, LoraSet* loras, float grad_scale,
                                             uint64_t dropout_key, const TeacherTargets* teacher = nullptr,
                                             const DistillParams& distill = {});

  // Full fine-tuning: from now on the graph reads the weights from `full` (f32 masters) and accumulates every
  // weight's gradient into it. Null returns to the model's own (frozen) weights.
  void SetFullParams(FullParams* full);

  // Bytes of activation memory held, for the memory summary.
  size_t activation_bytes() const;

 private:
  TrainGraph(const Model& model, int max_seq_len, ThreadPool* pool, bool keep_all);
  Status Check(const SequenceView& seq) const;
  void Embed(const SequenceView& seq, float* x);
  // Runs layer `il` on x_in (T, E) into x_out; saves what the backward pass needs in the layer buffers.
  void LayerForward(int il, const SequenceView& seq, const float* x_in, float* x_out);
  // Given dx_out (T, E), the gradient w.r.t. the layer output, writes dx_in; needs LayerForward just before.
  void LayerBackward(int il, const SequenceView& seq, const float* x_in, const float* dx_out, float* dx_in);

  // y (T, n_out) with row stride y_stride = W x (+ s B A dropout(x) when a module adapts W). Saves the LoRA
  // intermediates for LinearBackward when `save` is set.
  void Linear(const TensorView& w, const float* x, int T, float* y, int64_t y_stride, bool save);
  // dx (T, n_in) (+)= dy W (+ the LoRA path), LoRA gradients accumulate. dy has row stride dy_stride.
  void LinearBackward(const TensorView& w, const float* x, const float* dy, int64_t dy_stride, int T, float* dx,
                      bool accumulate);

  // Accumulates the gradient of an RMSNorm gain over T rows into full_'s buffer for `w` (no-op when frozen).
  void NormWeightGrad(const TensorView& w, const float* x, const float* dy, int T);
  // Accumulates sum_t dy[t, :n] into full_'s buffer for bias `b` (no-op when frozen or absent).
  void BiasGrad(const TensorView& b, const float* dy, int64_t stride, int T);

  const Model& model_;
  const ModelWeights* w_;  // the model's weights, or the masters of full_
  FullParams* full_ = nullptr;
  int max_T_;
  ThreadPool* pool_;
  LoraSet* loras_ = nullptr;
  uint64_t dropout_key_ = 0;
  bool training_ = false;

  std::vector<float> checkpoints_;  // (n_layer + 1, T, E): the residual stream entering each layer, and the last
  std::vector<float> grad_x_[2];    // (T, E) gradient w.r.t. the residual stream, ping-pong
  // LoRA intermediates per module of a layer: u = A x_drop (T, r) and x_drop (T, n_in) if dropout.
  struct LoraSaved {
    std::vector<float> u, x_drop;
  };
  // What a layer's backward pass needs from its forward pass (all (T, .) row-major).
  struct LayerActs {
    std::vector<float> hn1, q, k, v, att, lse, o, x1, hn2, gu, act, d;
    std::vector<LoraSaved> lora;  // indexed by LoraModule::slot
  };
  std::vector<LayerActs> acts_;  // one per layer, or a single one reused by recomputation
  LayerActs* a_ = nullptr;       // the layer being run
  void SelectLayer(int il) { a_ = &acts_[acts_.size() == 1 ? 0 : static_cast<size_t>(il)]; }
  std::vector<float> qkv_;  // (T, q_dim + 2 kv_dim) projection output before the split
  // Gradient scratch:
  std::vector<float> g_e_, g_e2_, g_q_, g_k_, g_v_, g_qkv_, g_att_, g_gu_, g_act_;
  std::vector<float> final_h_;
  std::vector<float> lora_du_;   // (T, r)
  std::vector<float> lora_tmp_;  // (T, max n_in) dropout scratch for the forward-only path
  std::vector<uint8_t> act_scratch_;
};

}  // namespace pocketlm
