// Formulas of llama.cpp examples/perplexity/perplexity.cpp at c392e50 ("perplexity.cpp" below); each function names
// the code it follows.
#include "train/kl_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace pocketlm {
namespace {

// perplexity.cpp nearest_int: round to nearest (ties to even) through the float mantissa.
int NearestInt(float fval) {
  const float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

// perplexity.cpp log_softmax(n_vocab, logits, uint16_t* log_prob, tok) as the --kl-divergence-base run writes it:
// scale and min_log_prob, then one 16-bit step count per vocabulary entry. Returns (scale, min_log_prob).
std::pair<float, float> EncodeLlamaLogProbs(const float* logits, int n_vocab, uint16_t* log_prob) {
  float max_logit = logits[0];
  float min_logit = logits[0];
  for (int i = 1; i < n_vocab; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);  // expf: float argument
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  if (scale != 0.0f) {
    const float inv_scale = 1 / scale;
    for (int i = 0; i < n_vocab; ++i) {
      log_prob[i] = logits[i] > min_logit ? static_cast<uint16_t>(NearestInt(inv_scale * (logits[i] - min_logit))) : 0;
    }
  } else {
    std::fill(log_prob, log_prob + n_vocab, uint16_t{0});
  }
  return {scale, min_log_prob};
}

}  // namespace

// perplexity.cpp log_softmax(n_vocab, logits, base_log_prob, tok, kld), with the reference's log-probabilities
// rounded as its file stores them (above) and its float arithmetic and accumulation types kept.
void KlStats::AddLlama(const float* base_logits, const float* logits, int n_vocab, int32_t tok) {
  scratch_u16_.resize(static_cast<size_t>(n_vocab));
  uint16_t* base_log_prob = scratch_u16_.data();
  const auto [scale, min_log_prob] = EncodeLlamaLogProbs(base_logits, n_vocab, base_log_prob);

  float max_logit = logits[0];
  int imax = 0;
  for (int i = 1; i < n_vocab; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));

  const float nll = max_logit + log_sum_exp - logits[tok];
  sum_nll_ += nll;
  sum_nll2_ += nll * nll;
  const float nll_base = -(scale * base_log_prob[tok] + min_log_prob);
  sum_nll_base_ += nll_base;
  sum_nll_base2_ += nll_base * nll_base;
  sum_nll_nll_base_ += nll * nll_base;

  max_logit += log_sum_exp;
  double sum = 0;
  int imax_base = -1;
  float p_log_base_max = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const float p_log_base = scale * base_log_prob[i] + min_log_prob;
    if (i == 0 || p_log_base > p_log_base_max) {
      p_log_base_max = p_log_base;
      imax_base = i;
    }
    if (p_log_base > -16.f) {
      const float p_base = std::exp(p_log_base);
      sum += p_base * (p_log_base - logits[i] + max_logit);
    }
  }
  sum_kld_ += sum;
  sum_kld2_ += sum * sum;
  ++count_;
  if (imax == imax_base) ++n_same_top_;

  const float p_base = std::exp(-nll_base);
  const float p = std::exp(-nll);
  const float p_diff = p - p_base;
  sum_p_diff_ += p_diff;
  const double p_diff2 = p_diff * p_diff;
  sum_p_diff2_ += p_diff2;
  sum_p_diff4_ += p_diff2 * p_diff2;
  max_p_diff_ = std::max(max_p_diff_, std::fabs(p_diff));
  kld_values_.push_back(static_cast<float>(sum));
  p_diff_values_.push_back(p_diff);
}

// The same quantities in double from both models' logits: nll = -log p_Q(tok), nll_base = -log p_base(tok),
// KLD = sum_i p_base(i) (log p_base(i) - log p_Q(i)), top tokens the first maximum of each (as perplexity.cpp).
void KlStats::AddExact(const float* base_logits, const float* logits, int n_vocab, int32_t tok) {
  const size_t V = static_cast<size_t>(n_vocab);
  scratch_.resize(V);
  double* e_base = scratch_.data();
  int imax = 0, imax_base = 0;
  for (int i = 1; i < n_vocab; ++i) {
    if (logits[i] > logits[imax]) imax = i;
    if (base_logits[i] > base_logits[imax_base]) imax_base = i;
  }
  const double max_q = logits[imax], max_base = base_logits[imax_base];
  double s_q = 0, s_base = 0;
  for (size_t i = 0; i < V; ++i) {
    s_q += std::exp(static_cast<double>(logits[i]) - max_q);
    e_base[i] = std::exp(static_cast<double>(base_logits[i]) - max_base);
    s_base += e_base[i];
  }
  const double lse_q = max_q + std::log(s_q), lse_base = max_base + std::log(s_base);
  // log p_base(i) - log p_Q(i) = (base_logits[i] - logits[i]) + (lse_q - lse_base): exactly 0 for identical logits.
  const double c = lse_q - lse_base;
  double kld = 0;
  for (size_t i = 0; i < V; ++i) {
    kld += e_base[i] / s_base * ((static_cast<double>(base_logits[i]) - logits[i]) + c);
  }
  kld = std::max(kld, 0.0);  // KL >= 0; a negative sum is rounding

  const double nll = lse_q - logits[tok];
  const double nll_base = lse_base - base_logits[tok];
  sum_nll_ += nll;
  sum_nll2_ += nll * nll;
  sum_nll_base_ += nll_base;
  sum_nll_base2_ += nll_base * nll_base;
  sum_nll_nll_base_ += nll * nll_base;
  sum_kld_ += kld;
  sum_kld2_ += kld * kld;
  ++count_;
  if (imax == imax_base) ++n_same_top_;

  const double p_diff = std::exp(-nll) - std::exp(-nll_base);
  sum_p_diff_ += p_diff;
  sum_p_diff2_ += p_diff * p_diff;
  sum_p_diff4_ += p_diff * p_diff * p_diff * p_diff;
  max_p_diff_ = std::max(max_p_diff_, static_cast<float>(std::fabs(p_diff)));
  kld_values_.push_back(static_cast<float>(kld));
  p_diff_values_.push_back(static_cast<float>(p_diff));
}

void KlStats::Add(const float* base_logits, const float* logits, int n_vocab, int32_t next_token) {
  if (rounding_ == KlBaseRounding::kLlamaFile) {
    AddLlama(base_logits, logits, n_vocab, next_token);
  } else {
    AddExact(base_logits, logits, n_vocab, next_token);
  }
}

// perplexity.cpp kl_divergence(): mean_and_uncertainty.
ValueUnc KlStats::MeanAndUnc(double sum, double sum2, int64_t count) {
  if (count < 1) return {};
  const double n = static_cast<double>(count);
  const double f = sum / n;
  double df = sum2 / n - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / (n - 1)) : 0.;
  return {f, df};
}

// perplexity.cpp kl_divergence(): covariance.
double KlStats::Covariance(double suma, double sumb, double sumab, int64_t count) {
  if (count < 10) return 0.0;
  const double n = static_cast<double>(count);
  double var = sumab / n - (suma / n) * (sumb / n);
  var /= n - 1;
  return var;
}

// perplexity.cpp kl_divergence(): percentile (float position and interpolation).
float KlStats::PercentileOfSorted(const std::vector<float>& values, float fraction) {
  if (values.empty()) return 0;
  if (fraction <= 0) return values.front();
  if (fraction >= 1) return values.back();
  float p = fraction * static_cast<float>(values.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<float>(ip);
  return (1 - p) * values[ip] + p * values[std::min(ip + 1, values.size() - 1)];
}

// perplexity.cpp kl_divergence(): kld_median / p_diff_median.
float KlStats::MedianOfSorted(const std::vector<float>& v) {
  if (v.empty()) return 0;
  return v.size() % 2 == 0 ? 0.5f * (v[v.size() / 2] + v[v.size() / 2 - 1]) : v[v.size() / 2];
}

// perplexity.cpp kl_divergence()'s final printout ("Perplexity statistics", "KL divergence statistics",
// "Token probability statistics"); guards where it would print nan (0/0 for a model compared with itself).
KlSummary KlStats::Summarize(bool with_percentiles) const {
  KlSummary s;
  s.count = count_;
  if (count_ == 0) return s;
  const double n = static_cast<double>(count_);
  // ppl_unc = ppl * unc(ln ppl): the derivative of exp.
  const ValueUnc log_ppl = MeanAndUnc(sum_nll_, sum_nll2_, count_);
  s.ppl_q = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.unc};
  const ValueUnc log_ppl_base = MeanAndUnc(sum_nll_base_, sum_nll_base2_, count_);
  s.ppl_base = {std::exp(log_ppl_base.value), std::exp(log_ppl_base.value) * log_ppl_base.unc};
  const double log_ppl_cov = Covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
  const double unc_product = log_ppl.unc * log_ppl_base.unc;
  s.ln_ppl_correlation = unc_product > 0 ? log_ppl_cov / unc_product : 0;
  // Var(a - b) = Var(a) + Var(b) - 2 Cov(a, b); clamped at 0 (rounding for identical models).
  const double ln_ratio_var = log_ppl.unc * log_ppl.unc + log_ppl_base.unc * log_ppl_base.unc - 2.0 * log_ppl_cov;
  s.ln_ppl_ratio = {log_ppl.value - log_ppl_base.value, std::sqrt(std::max(ln_ratio_var, 0.0))};
  s.ppl_ratio = {std::exp(s.ln_ppl_ratio.value), std::exp(s.ln_ppl_ratio.value) * s.ln_ppl_ratio.unc};
  const double ppl_cov = s.ppl_q.value * s.ppl_base.value * log_ppl_cov;
  const double diff_var = s.ppl_q.unc * s.ppl_q.unc + s.ppl_base.unc * s.ppl_base.unc - 2.0 * ppl_cov;
  s.ppl_diff = {s.ppl_q.value - s.ppl_base.value, std::sqrt(std::max(diff_var, 0.0))};

  s.kld = MeanAndUnc(sum_kld_, sum_kld2_, count_);
  s.p_diff = MeanAndUnc(sum_p_diff_, sum_p_diff2_, count_);
  // RMS Δp = sqrt(mean Δp^2), uncertainty 0.5 / rms * unc(mean Δp^2).
  const ValueUnc p_diff_mse = MeanAndUnc(sum_p_diff2_, sum_p_diff4_, count_);
  const double rms = std::sqrt(p_diff_mse.value);
  s.p_diff_rms = {rms, rms > 0 ? 0.5 / rms * p_diff_mse.unc : 0};
  s.p_diff_max_abs = max_p_diff_;
  // Same top p: binomial uncertainty sqrt(p (1 - p) / (n - 1)).
  const double same = static_cast<double>(n_same_top_) / n;
  s.same_top = {same, count_ > 1 ? std::sqrt(same * (1.0 - same) / (n - 1)) : 0};

  if (with_percentiles) {
    auto quantiles = [](std::vector<float> v, std::initializer_list<double> fractions) {
      std::sort(v.begin(), v.end());
      std::vector<Percentile> out;
      for (double f : fractions) {
        out.push_back({f, f == 0.5 ? MedianOfSorted(v) : PercentileOfSorted(v, static_cast<float>(f))});
      }
      return out;
    };
    s.kld_pct = quantiles(kld_values_, {1, 0.999, 0.99, 0.95, 0.90, 0.5, 0.10, 0.05, 0.01, 0.001, 0});
    s.p_diff_pct = quantiles(p_diff_values_, {1, 0.999, 0.99, 0.95, 0.90, 0.75, 0.5, 0.25, 0.10, 0.05, 0.01, 0.001, 0});
  }
  return s;
}

}  // namespace pocketlm
