// Training checkpoints: everything needed to continue a run exactly where it stopped - the LoRA factors, the
// AdamW moments and step, the data position and the run's settings (checked on resume so a resumed run cannot
// silently change them). Stored as a GGUF file (general.type = "pocketlm.checkpoint"), written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/optimizer.h"

namespace pocketlm {

struct TrainPosition {
  int64_t step = 0;         // optimizer steps done
  int64_t epoch = 0;        // data epoch in progress
  int64_t seq_index = 0;    // next packed sequence of that epoch
  int64_t tokens_seen = 0;  // tokens processed so far
};

// Settings that must match between a checkpoint and the run resuming it (a description string of them).
struct CheckpointIdentity {
  std::string base_fingerprint;
  std::string settings;  // e.g. "rank=16 alpha=32 targets=q,k,v seq_len=256 seed=42 ..."
};

// One trained tensor, in the optimizer's parameter order (AdamW's moments are stored in the same order).
struct CheckpointTensor {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  float* data = nullptr;
  size_t n = 0;
};

Status SaveCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors, AdamW& opt,
                      const TrainPosition& pos, const CheckpointIdentity& id);
// Restores values, moments and position into tensors/optimizer of the same configuration.
Status LoadCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors, AdamW* opt,
                      TrainPosition* pos, const CheckpointIdentity& expected);

}  // namespace pocketlm
