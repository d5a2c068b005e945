#include "train/distill.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

namespace pocketlm {

uint64_t VocabFingerprint(const Tokenizer& tok) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  const int32_t n = tok.n_vocab();
  mix(&n, sizeof(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string& text = tok.TokenText(id);
    const auto len = static_cast<uint32_t>(text.size());
    const uint32_t attr = tok.TokenAttributes(id);
    mix(&len, sizeof(len));  // lengths keep "ab","c" apart from "a","bc"
    mix(text.data(), text.size());
    mix(&attr, sizeof(attr));
  }
  return h;
}

Status CheckDistillable(const Model& student, const Model& teacher, const DistillConfig& config) {
  const float w = config.params.weight, temp = config.params.temp;
  if (!(w >= 0 && w <= 1)) return InvalidArgument("the distillation weight must be in [0, 1]");
  if (!(temp > 0) || !std::isfinite(temp)) return InvalidArgument("the distillation temperature must be positive");
  const int s_vocab = student.config().n_vocab, t_vocab = teacher.config().n_vocab;
  if (s_vocab != t_vocab || student.tokenizer().n_vocab() != teacher.tokenizer().n_vocab()) {
    return InvalidArgument("the teacher's vocabulary differs from the model's: " + std::to_string(t_vocab) +
                           " tokens, the model " + std::to_string(s_vocab));
  }
  if (VocabFingerprint(student.tokenizer()) != VocabFingerprint(teacher.tokenizer())) {
    return InvalidArgument("the teacher's vocabulary differs from the model's: same size (" + std::to_string(s_vocab) +
                           " tokens) but different token texts");
  }
  if (config.topk < 0 || config.topk > s_vocab) {
    return InvalidArgument("--distill-topk must be in 0.." + std::to_string(s_vocab) + " (the vocabulary size)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<DistillTeacher>> DistillTeacher::Create(const Model& student, const Model& teacher,
                                                               const DistillConfig& config, int max_seq_len,
                                                               std::shared_ptr<ThreadPool> pool) {
  PLM_RETURN_IF_ERROR(CheckDistillable(student, teacher, config));
  std::unique_ptr<DistillTeacher> d(new DistillTeacher(config, teacher.config().n_vocab));
  ContextParams cp;
  cp.n_ctx = max_seq_len;
  cp.pool = std::move(pool);
  PLM_ASSIGN_OR_RETURN(d->ctx_, Context::Create(teacher, cp));
  const auto T = static_cast<size_t>(max_seq_len);
  const auto V = static_cast<size_t>(d->n_vocab_);
  if (config.topk > 0) {
    const auto k = static_cast<size_t>(config.topk);
    d->logp_.resize(T * k);
    d->ids_.resize(T * k);
    d->rest_.resize(T);
    d->order_.resize(V);
  } else {
    d->logp_.resize(T * V);
  }
  return d;
}

void DistillTeacher::Store(int64_t t, const float* z) {
  const int64_t V = n_vocab_;
  const double inv_t = 1.0 / static_cast<double>(config_.params.temp);
  // log p_j = z_j / T - logsumexp(z / T), in double.
  const double mx = *std::max_element(z, z + V);
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp((static_cast<double>(z[j]) - mx) * inv_t);
  const double lse = mx * inv_t + std::log(sum);
  if (config_.topk == 0) {
    float* out = logp_.data() + t * V;
    for (int64_t j = 0; j < V; ++j) out[j] = static_cast<float>(static_cast<double>(z[j]) * inv_t - lse);
    return;
  }
  // The k largest logits (ties: the smaller id first, so the choice does not depend on the sort), and the rest mass
  // summed from the others rather than as 1 - sum (which cancels when the top k hold nearly everything).
  const int64_t k = config_.topk;
  std::iota(order_.begin(), order_.end(), 0);
  auto before = [z](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  std::nth_element(order_.begin(), order_.begin() + (k - 1), order_.end(), before);
  std::sort(order_.begin(), order_.begin() + k, before);
  float* lp = logp_.data() + t * k;
  int32_t* id = ids_.data() + t * k;
  for (int64_t i = 0; i < k; ++i) {
    id[i] = order_[static_cast<size_t>(i)];
    lp[i] = static_cast<float>(static_cast<double>(z[id[i]]) * inv_t - lse);
  }
  double rest = 0;
  for (int64_t i = k; i < V; ++i)
    rest += std::exp(static_cast<double>(z[order_[static_cast<size_t>(i)]]) * inv_t - lse);
  rest_[static_cast<size_t>(t)] = static_cast<float>(rest);
}

Result<TeacherTargets> DistillTeacher::Run(const SequenceView& seq) {
  if (seq.T > ctx_->n_ctx()) return InvalidArgument("the sequence is longer than the teacher's context");
  const int64_t V = n_vocab_;
  for (int s0 = 0; s0 < seq.T;) {
    int s1 = s0 + 1;  // end of the example starting at s0
    while (s1 < seq.T && (seq.seg_start == nullptr || seq.seg_start[s1] == seq.seg_start[s0])) ++s1;
    bool any = false;
    for (int t = s0; t < s1; ++t) any = any || (seq.targets[t] >= 0 && seq.targets[t] < V);
    if (any) {
      ctx_->Reset();
      PLM_RETURN_IF_ERROR(
          ctx_->Eval(std::span<const int32_t>(seq.tokens + s0, static_cast<size_t>(s1 - s0)), true, &logits_)
              .WithContext("evaluating the teacher"));
      for (int t = s0; t < s1; ++t) {
        if (seq.targets[t] >= 0 && seq.targets[t] < V) Store(t, logits_.data() + static_cast<int64_t>(t - s0) * V);
      }
    }
    s0 = s1;
  }
  TeacherTargets out;
  out.k = config_.topk;
  out.logp = logp_.data();
  if (config_.topk > 0) {
    out.ids = ids_.data();
    out.rest = rest_.data();
  }
  return out;
}

}  // namespace pocketlm
