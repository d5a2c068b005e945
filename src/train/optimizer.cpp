#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace pocketlm {

AdamW::AdamW(std::vector<ParamRef> params, const AdamWConfig& config) : params_(std::move(params)), config_(config) {
  size_t n = 0;
  for (const ParamRef& p : params_) n += p.n;
  m_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

void AdamW::Step(float lr) {
  ++step_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const auto bc1 = static_cast<float>(1.0 - std::pow(b1, static_cast<double>(step_)));
  const auto bc2 = static_cast<float>(1.0 - std::pow(b2, static_cast<double>(step_)));
  const float sqrt_bc2 = std::sqrt(bc2);
  const float beta1 = config_.beta1, beta2 = config_.beta2, eps = config_.eps;
  size_t off = 0;
  for (const ParamRef& p : params_) {
    float* m = m_.data() + off;
    float* v = v_.data() + off;
    const float decay = p.decay ? 1.0f - lr * config_.weight_decay : 1.0f;
    for (size_t i = 0; i < p.n; ++i) {
      const float g = p.grad[i];
      m[i] = beta1 * m[i] + (1.0f - beta1) * g;
      v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
      // PyTorch's form: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
      const float denom = std::sqrt(v[i]) / sqrt_bc2 + eps;
      p.value[i] = p.value[i] * decay - (lr / bc1) * m[i] / denom;
    }
    off += p.n;
  }
}

double GlobalGradNorm(const std::vector<ParamRef>& params) {
  double ss = 0;
  for (const ParamRef& p : params) {
    for (size_t i = 0; i < p.n; ++i) ss += static_cast<double>(p.grad[i]) * p.grad[i];
  }
  return std::sqrt(ss);
}

double ClipGradNorm(const std::vector<ParamRef>& params, double max_norm) {
  const double norm = GlobalGradNorm(params);
  if (max_norm <= 0) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  for (const ParamRef& p : params) {
    for (size_t i = 0; i < p.n; ++i) p.grad[i] = static_cast<float>(p.grad[i] * coef);
  }
  return norm;
}

Result<LrSchedule> ParseLrSchedule(std::string_view name) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "cosine") return LrSchedule::kCosine;
  return InvalidArgument("unknown learning-rate schedule '" + std::string(name) + "' (constant, linear, cosine)");
}

float LearningRate(LrSchedule schedule, float peak, int64_t step, int64_t warmup, int64_t total) {
  if (warmup > 0 && step < warmup) return peak * static_cast<float>(step + 1) / static_cast<float>(warmup);
  if (schedule == LrSchedule::kConstant || total <= warmup) return peak;
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
  if (schedule == LrSchedule::kLinear) return static_cast<float>(peak * (1.0 - progress));
  return static_cast<float>(peak * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace pocketlm
