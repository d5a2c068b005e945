// The LoRA fine-tuning loop: packed sequences -> forward/backward (TrainGraph) -> gradient accumulation to
// --batch-tokens -> clipping -> AdamW at the scheduled learning rate; validation every N steps; checkpoints
// every N steps (atomic) and exact resume. Deterministic for a given seed and thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/data/packing.h"
#include "train/distill.h"
#include "train/lora_set.h"
#include "train/optimizer.h"
#include "train/train_graph.h"

namespace pocketlm {

// Where the packed sequences of each epoch come from (order and count may differ per epoch, e.g. after a seeded
// shuffle). A reference returned by Get stays valid until the next call.
class SequenceSource {
 public:
  virtual ~SequenceSource() = default;
  virtual size_t SizeOfEpoch(int64_t epoch) = 0;
  virtual const PackedSequence& Get(int64_t epoch, size_t index) = 0;
};

// Packs a dataset's examples epoch by epoch (SequencePacker) and keeps the current epoch's sequences.
class PackedDataSource : public SequenceSource {
 public:
  explicit PackedDataSource(SequencePacker packer) : packer_(std::move(packer)) {}
  size_t SizeOfEpoch(int64_t epoch) override;
  const PackedSequence& Get(int64_t epoch, size_t index) override;

 private:
  void Materialize(int64_t epoch);
  SequencePacker packer_;
  int64_t epoch_ = -1;
  std::vector<PackedSequence> seqs_;
};

struct TrainerConfig {
  LoraConfig lora;
  bool full = false;  // full fine-tuning: every weight trainable (f32 masters) instead of LoRA
  int seq_len = 256;
  int64_t batch_tokens = 2048;  // tokens per optimizer step (rounded up to whole sequences)
  int64_t steps = 0;            // 0: derived from epochs
  double epochs = 1.0;
  float lr = 2e-4f;
  LrSchedule schedule = LrSchedule::kCosine;
  int64_t warmup_steps = -1;  // -1: 3% of the steps
  float weight_decay = 0.0f;
  float clip_norm = 1.0f;  // 0: no clipping
  int64_t eval_every = 0;  // 0: only at the end (when there is validation data)
  int64_t save_every = 0;  // 0: no intermediate checkpoints
  std::string checkpoint_path;
  std::string resume_path;
  int64_t stop_after = 0;
  // Keep every layer's activations when they fit in this many bytes (no recomputation); 0: always recompute.
  size_t activation_budget =
      size_t{768} << 20;  // > 0: stop after this many steps of this run, as an interruption would (tests resume)
  int n_threads = 2;
  // Knowledge distillation from this model (same vocabulary; outlives the trainer), null: cross-entropy only.
  // Validation losses stay the plain cross-entropy.
  const Model* teacher = nullptr;
  DistillConfig distill;
};

// What the loop reports, for progress bars and logs.
struct TrainEvent {
  enum Kind : uint8_t { kStep, kEval, kCheckpoint } kind = kStep;
  int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0;          // mean loss over the step's targets (kStep) or the validation set (kEval)
  double grad_norm = 0;     // before clipping
  double ce = -1, kl = -1;  // kStep with distillation: the step's mean cross-entropy and KL(teacher || student)
  float lr = 0;
  double tokens_per_s = 0, elapsed_s = 0, eta_s = 0;
  std::string path;  // kCheckpoint
};

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;  // mean over the first / last min(10, steps / 2) steps of this run
  double val_loss_before = -1, val_loss_after = -1;
  double seconds = 0, tokens_per_s = 0;
  int64_t tokens = 0;
  size_t activation_bytes = 0;
};

class Trainer {
 public:
  static Result<std::unique_ptr<Trainer>> Create(const Model& model, const TrainerConfig& config, SequenceSource* train,
                                                 SequenceSource* val);
  Result<TrainSummary> Run(const std::function<void(const TrainEvent&)>& on_event);
  // The result: the LoRA adapter (GGUF adapter) or, in full mode, the whole model (GGUF, f32).
  // `adapter_type`: f32, f16 or bf16 storage of a LoRA adapter (LoraSet::WriteGguf); full mode writes f32.
  Status WriteOutput(const std::string& path, DType adapter_type = DType::kF32) const;
  LoraSet* loras() { return loras_.get(); }  // null in full mode
  size_t n_trainable() const;
  std::string Describe() const;  // "LoRA rank 16 on q,k,...: 168 modules" or "full fine-tuning"
  int64_t total_steps() const { return total_steps_; }
  int64_t sequences_per_step() const { return seqs_per_step_; }

  // Mean loss over every sequence of `src` (no dropout).
  Result<double> Evaluate(SequenceSource* src);

 private:
  Trainer(const Model& model, const TrainerConfig& config);
  CheckpointIdentity Identity() const;

  const Model& model_;
  TrainerConfig config_;
  std::unique_ptr<LoraSet> loras_;
  std::unique_ptr<FullParams> full_;
  std::vector<CheckpointTensor> ckpt_tensors_;
  ThreadPool pool_;
  std::unique_ptr<DistillTeacher> teacher_;  // shares pool_ (declared after it: destroyed first)
  std::unique_ptr<TrainGraph> graph_;
  std::unique_ptr<AdamW> opt_;
  std::vector<ParamRef> params_;
  SequenceSource* train_ = nullptr;
  SequenceSource* val_ = nullptr;
  int64_t seqs_per_step_ = 1;
  int64_t total_steps_ = 0;
  int64_t warmup_ = 0;
  std::string fingerprint_;
};

}  // namespace pocketlm
