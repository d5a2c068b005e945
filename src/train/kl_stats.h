// The statistics llama-perplexity prints with --kl-divergence (llama.cpp examples/perplexity/perplexity.cpp at
// c392e50: kl_divergence_result, log_softmax(..., kl_divergence_result&), kl_divergence()'s final printout), computed
// from a reference ("base") model's and a tested ("Q") model's logits at the same positions.
//
// KlStats::Add takes one scored position at a time (both models' logits and the token that follows) and keeps the
// running sums llama-perplexity keeps, plus one KLD and one Δp value per position for the percentiles.
// Summarize turns them into means with uncertainties, percentiles, PPL(Q), PPL(base) and their ratio.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pocketlm {

// How the reference's log-probabilities are taken.
enum class KlBaseRounding {
  // In double from the logits: a model compared with itself gives KLD 0 exactly.
  kExact,
  // As llama-perplexity's --kl-divergence-base file stores them (perplexity.cpp log_softmax(n_vocab, logits,
  // uint16_t* log_prob, tok)): 16-bit steps over [max - 16, max] of the logits, entries below -16 nats dropped from
  // the KLD sum; and its single-precision arithmetic. Reproduces its numbers for the same logits.
  kLlamaFile,
};

// A mean and its standard error.
struct ValueUnc {
  double value = 0, unc = 0;
};

// One percentile: fraction 0 is the minimum, 1 the maximum, 0.5 the median.
struct Percentile {
  double fraction = 0;
  float value = 0;
};

struct KlSummary {
  int64_t count = 0;  // scored positions
  ValueUnc ppl_q, ppl_base;
  double ln_ppl_correlation = 0;  // Cor(ln(PPL(Q)), ln(PPL(base)))
  ValueUnc ln_ppl_ratio, ppl_ratio, ppl_diff;
  ValueUnc kld;
  ValueUnc p_diff, p_diff_rms;  // Δp = p_Q(token) - p_base(token)
  float p_diff_max_abs = 0;
  ValueUnc same_top;                   // fraction of positions where both models' most likely tokens agree
  std::vector<Percentile> kld_pct;     // maximum, 99.9, 99, 95, 90, median, 10, 5, 1, 0.1 %, minimum
  std::vector<Percentile> p_diff_pct;  // maximum, 99.9, 99, 95, 90, 75, median, 25, 10, 5, 1, 0.1 %, minimum
};

class KlStats {
 public:
  explicit KlStats(KlBaseRounding rounding = KlBaseRounding::kExact) : rounding_(rounding) {}

  // One scored position: the reference's and the model's logits (n_vocab each) and the token that follows.
  void Add(const float* base_logits, const float* logits, int n_vocab, int32_t next_token);

  int64_t count() const { return count_; }
  // with_percentiles: also sort (copies of) the per-position values for the percentiles (the running line of each
  // chunk does without).
  KlSummary Summarize(bool with_percentiles = true) const;

  // llama-perplexity's helpers, exposed for the tests.
  // mean_and_uncertainty: mean sum/n and sqrt((sum2/n - mean^2) / (n - 1)), the latter 0 unless positive and n > 10.
  static ValueUnc MeanAndUnc(double sum, double sum2, int64_t count);
  // covariance: (sumab/n - (suma/n)(sumb/n)) / (n - 1), 0 when n < 10.
  static double Covariance(double suma, double sumb, double sumab, int64_t count);
  // percentile of sorted values: linear interpolation at fraction (n - 1), in float as llama-perplexity does.
  static float PercentileOfSorted(const std::vector<float>& sorted, float fraction);
  // median of sorted values: the middle one, or the float mean of the middle two.
  static float MedianOfSorted(const std::vector<float>& sorted);

 private:
  void AddExact(const float* base_logits, const float* logits, int n_vocab, int32_t next_token);
  void AddLlama(const float* base_logits, const float* logits, int n_vocab, int32_t next_token);

  KlBaseRounding rounding_;
  // perplexity.cpp kl_divergence_result's sums.
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0;
  double sum_p_diff_ = 0, sum_p_diff2_ = 0, sum_p_diff4_ = 0;
  float max_p_diff_ = 0;
  int64_t n_same_top_ = 0, count_ = 0;
  std::vector<float> kld_values_, p_diff_values_;  // one per position
  std::vector<double> scratch_;
  std::vector<uint16_t> scratch_u16_;
};

}  // namespace pocketlm
