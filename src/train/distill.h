// The teacher of distillation (ops/distill_loss.h): another model pocketlm runs, evaluated with the inference
// Context on each training sequence right before the student's step, its next-token distributions kept at the
// distillation temperature, over the full vocabulary or as its top k plus the rest mass (what a cache of teacher
// outputs would store: k + 1 values and k ids per position).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "ops/distill_loss.h"
#include "train/train_graph.h"

namespace pocketlm {

struct DistillConfig {
  DistillParams params;  // weight w and temperature T
  int topk = 0;          // 0: the full vocabulary
};

// FNV-1a 64 over the vocabulary size and every token's text and attributes: equal for tokenizers that give every
// text the same ids (merges and pre-tokenizer aside, which follow the token texts in practice).
uint64_t VocabFingerprint(const Tokenizer& tok);

// Checks that `teacher` can teach `student`: same vocabulary (size, output width and fingerprint), sane
// parameters. One-line errors.
Status CheckDistillable(const Model& student, const Model& teacher, const DistillConfig& config);

class DistillTeacher {
 public:
  // `pool` is shared with the student's trainer (the two never run at the same time).
  static Result<std::unique_ptr<DistillTeacher>> Create(const Model& student, const Model& teacher,
                                                        const DistillConfig& config, int max_seq_len,
                                                        std::shared_ptr<ThreadPool> pool);

  // The teacher's distributions for every position of `seq` with a target (other rows are left as they were).
  // Each example of a packed sequence is evaluated on its own from position 0, as the student sees it (document
  // masking, positions restarting); examples without targets are skipped. The result points into this object and
  // stays valid until the next call.
  Result<TeacherTargets> Run(const SequenceView& seq);

  const DistillConfig& config() const { return config_; }

 private:
  DistillTeacher(const DistillConfig& config, int64_t n_vocab) : config_(config), n_vocab_(n_vocab) {}
  // Row `t` of the stored distributions from the teacher's logits z (n_vocab).
  void Store(int64_t t, const float* z);

  DistillConfig config_;
  int64_t n_vocab_;
  std::unique_ptr<Context> ctx_;
  std::vector<float> logits_;   // (n, n_vocab) of one example
  std::vector<float> logp_;     // (T, n_vocab) or (T, k)
  std::vector<int32_t> ids_;    // (T, k)
  std::vector<float> rest_;     // (T)
  std::vector<int32_t> order_;  // (n_vocab) top-k selection scratch
};

}  // namespace pocketlm
