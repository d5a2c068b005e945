#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace pocketlm {

Status SamplingParams::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0) return InvalidArgument("temperature must be >= 0");
  if (!(top_p > 0) || top_p > 1) return InvalidArgument("top_p must be in (0, 1]");
  if (!(min_p >= 0) || min_p >= 1) return InvalidArgument("min_p must be in [0, 1)");
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) return InvalidArgument("repeat_penalty must be > 0");
  if (repeat_last_n < 0) return InvalidArgument("repeat_last_n must be >= 0");
  return Status::Ok();
}

Sampler::Sampler(const SamplingParams& p) : p_(p), state_(p.seed ^ 0x9E3779B97F4A7C15ull) {}

double Sampler::NextUniform() {
  // SplitMix64 (Steele et al. 2014): tiny, fast, statistically fine for sampling.
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int32_t ArgMax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  const auto n = static_cast<int32_t>(logits.size());
  cand_.resize(logits.size());
  for (int32_t i = 0; i < n; ++i) cand_[static_cast<size_t>(i)] = {i, logits[static_cast<size_t>(i)], 0.0f};

  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    std::unordered_set<int32_t> seen(history.begin() + static_cast<std::ptrdiff_t>(from), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n) continue;
      float& l = cand_[static_cast<size_t>(id)].logit;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f) {
    return std::max_element(cand_.begin(), cand_.end(), [](auto& a, auto& b) { return a.logit < b.logit; })->id;
  }

  // Sort by logit, descending; ties by id so results do not depend on the sort's stability.
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t keep = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = static_cast<size_t>(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(keep), cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(keep);

  auto softmax = [&](float temp) {
    const float mx = cand_[0].logit;
    double sum = 0;
    for (auto& c : cand_) sum += (c.p = std::exp((c.logit - mx) / temp));
    for (auto& c : cand_) c.p = static_cast<float>(c.p / sum);
  };
  softmax(1.0f);
  if (p_.top_p < 1.0f) {  // nucleus sampling (Holtzman et al. 2019): smallest prefix with mass >= top_p
    double cum = 0;
    size_t k = 0;
    while (k < cand_.size()) {
      cum += cand_[k++].p;
      if (cum >= p_.top_p) break;
    }
    cand_.resize(std::max<size_t>(k, 1));
  }
  if (p_.min_p > 0.0f) {  // drop tokens less likely than min_p times the most likely one
    const float cut = cand_[0].p * p_.min_p;
    size_t k = 1;
    while (k < cand_.size() && cand_[k].p >= cut) ++k;
    cand_.resize(k);
  }
  softmax(p_.temperature);
  const double r = NextUniform();
  double cum = 0;
  for (const auto& c : cand_) {
    cum += c.p;
    if (r < cum) return c.id;
  }
  return cand_.back().id;
}

}  // namespace pocketlm
