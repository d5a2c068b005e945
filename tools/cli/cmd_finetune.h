// `pocketlm finetune`: LoRA fine-tuning from JSONL data on the CPU.
#pragma once

#include <string>

#include "option_table.h"
#include "train/trainer.h"

namespace pocketlm::cli {

struct FinetuneOptions {
  std::string model_path, data_path, val_path, out_path;
  std::string targets = "all-linear";
  std::string schedule = "cosine";
  std::string chat_template;  // empty: from the model's metadata
  std::string adapter_type = "f32";
  std::string checkpoint_path, resume_path, export_peft_dir;
  std::string distill_path;  // teacher model; empty: no distillation
  float distill_weight = 0.5f;
  float distill_temp = 1.0f;
  int distill_topk = 0;
  int rank = 16;
  float alpha = 32.0f;
  float dropout = 0.0f;
  bool rslora = false;
  bool full = false;
  float lr = 2e-4f;
  int64_t steps = 0;
  double epochs = 1.0;
  int seq_len = 256;
  int64_t batch_tokens = 2048;
  int64_t warmup = -1;
  float weight_decay = 0.0f;
  float clip = 1.0f;
  int64_t eval_every = 0;
  int64_t save_every = 0;
  int64_t stop_after = 0;
  int64_t activation_mib = 768;
  uint64_t seed = 42;
  int threads = 2;
  bool strict = false;
  bool train_on_prompt = false;
  bool no_pack = false;
  bool quiet = false;

  void Declare(Options& o);
};

int FinetuneCommand(const FinetuneOptions& o);

}  // namespace pocketlm::cli
