#include "calibrate/calibrate.h"

#include <cmath>
#include <unordered_map>
#include <vector>

namespace pocketlm {

namespace {

// Sums of squared inputs per column of every "blk." weight, keyed by the weight's data (one entry per matrix).
class SquareSums : public MatMulInputObserver {
 public:
  struct Entry {
    std::string name;
    std::vector<double> sums;  // (n_in)
    int64_t tokens = 0;
  };

  void OnMatMulInput(const TensorView& w, const float* x, int n) override {
    if (!w.name.starts_with("blk.")) return;
    auto [it, fresh] = index_.try_emplace(w.data, entries_.size());
    if (fresh) entries_.push_back({std::string(w.name), std::vector<double>(static_cast<size_t>(w.n_in()), 0.0), 0});
    Entry& e = entries_[it->second];
    const int64_t n_in = w.n_in();
    for (int t = 0; t < n; ++t) {
      const float* row = x + t * n_in;
      for (int64_t j = 0; j < n_in; ++j) e.sums[static_cast<size_t>(j)] += static_cast<double>(row[j]) * row[j];
    }
    e.tokens += n;
  }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::unordered_map<const uint8_t*, size_t> index_;
  std::vector<Entry> entries_;  // in the order the forward pass first reaches them
};

// Detaches the observer however Calibrate returns.
struct ObserverScope {
  ObserverScope(Context& c, MatMulInputObserver* o) : ctx(c) { ctx.set_matmul_input_observer(o); }
  ~ObserverScope() { ctx.set_matmul_input_observer(nullptr); }
  Context& ctx;
};

}  // namespace

Result<quantize::ImportanceMatrix> Calibrate(Context& ctx, std::span<const int32_t> tokens, const CalibrateOptions& o,
                                             const std::function<void(int, int)>& progress) {
  const int n_ctx = ctx.n_ctx();
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < n_ctx) {
    return InvalidArgument("the calibration text has " + std::to_string(n_tokens) +
                           " tokens, fewer than one chunk of " + std::to_string(n_ctx) +
                           " (use a longer text or a context of at most " + std::to_string(n_tokens) + ")");
  }
  int n_chunks = static_cast<int>(n_tokens / n_ctx);
  if (o.max_chunks > 0 && o.max_chunks < n_chunks) n_chunks = o.max_chunks;

  const Tokenizer& tok = ctx.model().tokenizer();
  const bool add_bos = tok.add_bos() && tok.bos() >= 0;
  SquareSums sums;
  ObserverScope scope(ctx, &sums);
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  for (int c = 0; c < n_chunks; ++c) {
    const auto* first = tokens.data() + static_cast<ptrdiff_t>(c) * n_ctx;
    chunk.assign(first, first + n_ctx);
    if (add_bos) chunk[0] = tok.bos();  // every chunk starts as a document does (llama-imatrix)
    ctx.Reset();
    PLM_RETURN_IF_ERROR(ctx.Eval(chunk, /*all_logits=*/false, &logits));
    if (progress) progress(c + 1, n_chunks);
  }
  ctx.Reset();

  quantize::ImportanceMatrix m;
  m.chunk_count = n_chunks;
  m.chunk_size = n_ctx;
  m.dataset = o.dataset;
  for (const SquareSums::Entry& e : sums.entries()) {
    quantize::ImatrixEntry out;
    out.ncall = n_chunks;
    out.n_values = static_cast<int64_t>(e.sums.size());
    out.values.resize(e.sums.size());
    for (size_t j = 0; j < e.sums.size(); ++j) {
      // The mean; WriteImatrix stores it times ncall, as llama-imatrix's save_imatrix writes (sum / count) * ncall.
      const float v = static_cast<float>(e.sums[j]) / static_cast<float>(e.tokens);
      if (!std::isfinite(v)) {
        return InvalidArgument("the activations entering '" + e.name + "' are not finite (column " + std::to_string(j) +
                               "): the model's weights or the text overflow");
      }
      out.values[j] = v;
    }
    m.entries.emplace(e.name, std::move(out));
  }
  if (m.entries.empty()) return Internal("the forward pass multiplied no blk.* weight: nothing to calibrate");
  return m;
}

}  // namespace pocketlm
