// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") with PyTorch's update order, a
// learning-rate schedule (linear warmup, then constant, linear or cosine decay) and global-norm gradient
// clipping (Pascanu et al. 2013).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocketlm {

// One trainable tensor: values, gradient, and whether weight decay applies.
struct ParamRef {
  float* value = nullptr;
  float* grad = nullptr;
  size_t n = 0;
  bool decay = true;
};

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

class AdamW {
 public:
  AdamW(std::vector<ParamRef> params, const AdamWConfig& config);

  // One update at learning rate lr: p -= lr * wd * p; m, v moments; p -= lr * m_hat / (sqrt(v_hat) + eps).
  void Step(float lr);

  int64_t step() const { return step_; }
  // Moments for checkpoints: m then v of every parameter, in order.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  void set_step(int64_t s) { step_ = s; }
  size_t state_size() const { return m_.size(); }

 private:
  std::vector<ParamRef> params_;
  AdamWConfig config_;
  std::vector<float> m_, v_;
  int64_t step_ = 0;
};

// L2 norm of all gradients together (in double).
double GlobalGradNorm(const std::vector<ParamRef>& params);
// Scales the gradients so their global norm is at most max_norm (PyTorch clip_grad_norm_: coef =
// max_norm / (norm + 1e-6), applied when < 1). Returns the norm before clipping.
double ClipGradNorm(const std::vector<ParamRef>& params, double max_norm);

enum class LrSchedule : uint8_t { kConstant, kLinear, kCosine };
Result<LrSchedule> ParseLrSchedule(std::string_view name);  // constant | linear | cosine

// Learning rate for optimizer step `step` (0-based) of `total`: linear warmup over `warmup` steps reaching
// `peak` at step warmup - 1 (lr = peak * (step + 1) / warmup, so no step is wasted at lr 0), then the schedule
// decays from peak to 0 at step total (linear, or half a cosine: Loshchilov & Hutter 2017, SGDR).
float LearningRate(LrSchedule schedule, float peak, int64_t step, int64_t warmup, int64_t total);

}  // namespace pocketlm
