#include "model/context.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace pocketlm {

Context::Context(const Model& model, const ContextParams& params, int n_ctx)
    : model_(model),
      params_(params),
      n_ctx_(n_ctx),
      pool_(params.pool ? params.pool : std::make_shared<ThreadPool>(params.n_threads)) {
  const ModelConfig& c = model.config();
  const auto B = static_cast<size_t>(params.n_batch);
  kv_elems_ = static_cast<size_t>(c.n_layer) * static_cast<size_t>(n_ctx) * static_cast<size_t>(c.kv_dim());
  k_cache_.reset(new uint16_t[kv_elems_]);  // no value-initialization: see context.h
  v_cache_.reset(new uint16_t[kv_elems_]);
  x_.resize(B * c.n_embd);
  h_.resize(B * c.n_embd);
  qkv_.resize(B * (c.q_dim() + 2 * c.kv_dim()));
  attn_.resize(B * c.q_dim());
  ffn_.resize(B * 2 * c.n_ff);
}

Result<std::unique_ptr<Context>> Context::Create(const Model& model, const ContextParams& params) {
  ContextParams p = params;
  if (p.n_threads < 1 || p.n_threads > 512) return InvalidArgument("thread count must be 1..512");
  if (p.n_batch < 1) p.n_batch = 1;
  int n_ctx = p.n_ctx;
  if (n_ctx <= 0) n_ctx = std::min(model.config().n_ctx_train, 4096);
  if (n_ctx > (1 << 20)) return InvalidArgument("context size " + std::to_string(n_ctx) + " is too large");
  return std::unique_ptr<Context>(new Context(model, p, n_ctx));
}

Status Context::SetAdapters(const std::vector<ActiveLora>& adapters) {
  LoraIndex index;
  for (const ActiveLora& a : adapters) {
    if (a.adapter == nullptr) return InvalidArgument("null adapter");
    PLM_RETURN_IF_ERROR(a.adapter->CheckAgainst(model_.file(), &model_.lineage()));
    for (const auto& [name, pair] : a.adapter->pairs()) {
      const GgufTensorInfo* w = model_.file().FindTensor(name);
      index[w->data].push_back({&pair, a.adapter->EffectiveScale(pair, a.scale)});
    }
  }
  lora_ = std::move(index);
  lora_down_.clear();  // lora_tmp_ grows in PrepareLora as the terms need
  n_past_ = 0;
  return Status::Ok();
}

Status Context::CheckToken(int32_t t) const {
  const int n_vocab = model_.config().n_vocab;
  if (t < 0 || t >= n_vocab) {
    return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                           std::to_string(n_vocab - 1) + ")");
  }
  return Status::Ok();
}

Status Context::Eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  const ModelConfig& c = model_.config();
  if (tokens.empty()) return InvalidArgument("nothing to evaluate (empty token list)");
  if (static_cast<int64_t>(n_past_) + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return OutOfRange("prompt and output need " + std::to_string(n_past_ + tokens.size()) +
                      " positions but the context holds " + std::to_string(n_ctx_) +
                      " (shorten the prompt or use a larger context)");
  }
  for (int32_t t : tokens) PLM_RETURN_IF_ERROR(CheckToken(t));
  const size_t n = tokens.size();
  logits->assign((all_logits ? n : 1) * static_cast<size_t>(c.n_vocab), 0.0f);
  std::vector<Row> rows;
  for (size_t i = 0; i < n; i += static_cast<size_t>(params_.n_batch)) {
    const int chunk = static_cast<int>(std::min(n - i, static_cast<size_t>(params_.n_batch)));
    const bool last = i + static_cast<size_t>(chunk) == n;
    float* out = all_logits ? logits->data() + i * static_cast<size_t>(c.n_vocab) : logits->data();
    rows.clear();
    for (int t = 0; t < chunk; ++t) rows.push_back({this, tokens[i + static_cast<size_t>(t)], n_past_ + t});
    EvalRows(rows, all_logits ? 0 : (last ? chunk - 1 : chunk), out);
  }
  return Status::Ok();
}

Status Context::DecodeBatch(std::span<Context* const> seqs, std::span<const int32_t> tokens,
                            std::vector<float>* logits) {
  const ModelConfig& c = model_.config();
  if (seqs.size() != tokens.size()) return InvalidArgument("DecodeBatch: one token per sequence");
  if (seqs.empty()) return InvalidArgument("nothing to evaluate (empty batch)");
  for (size_t i = 0; i < seqs.size(); ++i) {
    Context* s = seqs[i];
    if (s == nullptr || &s->model_ != &model_) return InvalidArgument("DecodeBatch: a context of another model");
    if (std::find(seqs.begin(), seqs.begin() + static_cast<std::ptrdiff_t>(i), s) !=
        seqs.begin() + static_cast<std::ptrdiff_t>(i)) {
      return InvalidArgument("DecodeBatch: a sequence appears twice in one batch");
    }
    if (s->n_past_ >= s->n_ctx_) {
      return OutOfRange("sequence " + std::to_string(i) + " is at its context size " + std::to_string(s->n_ctx_));
    }
    PLM_RETURN_IF_ERROR(CheckToken(tokens[i]));
  }
  logits->assign(seqs.size() * static_cast<size_t>(c.n_vocab), 0.0f);
  std::vector<Row> rows;
  for (size_t i = 0; i < seqs.size(); i += static_cast<size_t>(params_.n_batch)) {
    const size_t chunk = std::min(seqs.size() - i, static_cast<size_t>(params_.n_batch));
    rows.clear();
    for (size_t j = i; j < i + chunk; ++j) rows.push_back({seqs[j], tokens[j], seqs[j]->n_past_});
    EvalRows(rows, 0, logits->data() + i * static_cast<size_t>(c.n_vocab));
  }
  return Status::Ok();
}

void Context::PrepareLora(const float* x, std::initializer_list<const TensorView*> ws) {
  lora_down_.clear();
  size_t total = 0;  // sum of the ranks
  size_t offset = 0;
  int64_t work = 0;
  for (const TensorView* w : ws) {
    for (const Run& run : runs_) {
      auto it = run.seq->lora_.find(w->data);
      if (it == run.seq->lora_.end()) continue;
      for (const LoraTerm& term : it->second) {
        lora_down_.push_back({w->data, x, &term, run.row0, run.n, offset, false});
        total += static_cast<size_t>(term.pair->rank());
        offset += static_cast<size_t>(term.pair->rank() * run.n);
        work += term.pair->a.n_in() * term.pair->rank() * run.n;
      }
    }
  }
  if (lora_down_.empty()) return;
  if (lora_tmp_.size() < offset) lora_tmp_.resize(offset);
  // The rows of all A factors, numbered back to back, split across the threads: one region for the group.
  auto rows = [&](size_t k0, size_t k1) {
    size_t first = 0;
    for (const LoraDown& d : lora_down_) {
      const auto r = static_cast<size_t>(d.term->pair->rank());
      const size_t b = std::max(k0, first), e = std::min(k1, first + r);
      if (b < e) {
        const TensorView& a = d.term->pair->a;
        float* tmp = lora_tmp_.data() + d.offset;  // (d.n, r)
        const auto lo = static_cast<int64_t>(b - first), hi = static_cast<int64_t>(e - first);
        MatMulWeightsTRows(a, x + d.row0 * a.n_in(), d.n, tmp, static_cast<int64_t>(r), false, lo, hi);
        for (int t = 0; t < d.n; ++t) ScaleInPlace(tmp + static_cast<size_t>(t) * r + lo, hi - lo, d.term->scale);
      }
      first += r;
    }
  };
  if (work < 16384) {
    rows(0, total);
  } else {
    pool_->ParallelFor(total, rows);
  }
}

bool Context::HasLoraTerms(const TensorView& w) const {
  return any_lora_ &&
         std::any_of(runs_.begin(), runs_.end(), [&](const Run& r) { return r.seq->lora_.contains(w.data); });
}

void Context::Linear(const TensorView& w, const float* x, int n, float* y, int64_t y_stride) {
  if (observer_ != nullptr) observer_->OnMatMulInput(w, x, n);
  if (!HasLoraTerms(w)) {
    MatMulWeightsT(w, x, n, y, y_stride, /*accumulate=*/false, pool_.get(), &act_scratch_);
    return;
  }
  const auto prepared = [&] {
    return std::any_of(lora_down_.begin(), lora_down_.end(),
                       [&](const LoraDown& d) { return d.weight == w.data && d.x == x && !d.used; });
  };
  if (!prepared()) PrepareLora(x, {&w});
  // y += B (s A x) for the rows this thread just computed: no region of its own.
  const std::function<void(int64_t, int64_t)> add_lora = [&](int64_t r0, int64_t r1) {
    for (const LoraDown& d : lora_down_) {
      if (d.weight != w.data || d.x != x || d.used) continue;
      MatMulTransposedAccumulateRows(d.term->pair->b_t, lora_tmp_.data() + d.offset, d.n, d.term->pair->rank(),
                                     y + d.row0 * y_stride, y_stride, r0, r1);
    }
  };
  MatMulWeightsT(w, x, n, y, y_stride, /*accumulate=*/false, pool_.get(), &act_scratch_, &add_lora);
  for (LoraDown& d : lora_down_) {
    if (d.weight == w.data && d.x == x) d.used = true;
  }
}

void Context::LinearGroup(std::initializer_list<MatMulOutput> outs, const float* x, int n) {
  if (std::any_of(outs.begin(), outs.end(), [&](const MatMulOutput& o) { return HasLoraTerms(*o.w); })) {
    for (const MatMulOutput& o : outs) Linear(*o.w, x, n, o.y, o.y_stride);
    return;
  }
  if (observer_ != nullptr) {
    for (const MatMulOutput& o : outs) observer_->OnMatMulInput(*o.w, x, n);
  }
  MatMulWeightsTGroup(std::span<const MatMulOutput>(outs.begin(), outs.size()), x, n, pool_.get(), &act_scratch_);
}

void Context::Norm(const float* x, const TensorView& w, int n, float* y) {
  const int64_t E = model_.config().n_embd;
  for (int t = 0; t < n; ++t) RmsNorm(x + t * E, w.f32(), E, model_.config().rms_eps, y + t * E);
}

void Context::EvalRows(std::span<const Row> rows, int first_logit, float* logits_out) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  const int64_t E = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), FF = c.n_ff;
  const int64_t QKV = QD + 2 * KVD;
  const int n = static_cast<int>(rows.size());
  runs_.clear();
  any_lora_ = false;
  for (int t = 0; t < n; ++t) {
    const Row& r = rows[static_cast<size_t>(t)];
    if (runs_.empty() || runs_.back().seq != r.seq || runs_.back().pos0 + runs_.back().n != r.pos) {
      runs_.push_back({r.seq, t, 0, r.pos});
      any_lora_ = any_lora_ || !r.seq->lora_.empty();
    }
    ++runs_.back().n;
  }
  // The layer-il slice of a sequence's key or value cache: (n_ctx, KVD).
  const auto cache = [&](const std::unique_ptr<uint16_t[]>& kv, const Context* seq, int il) {
    return kv.get() + static_cast<size_t>(il) * static_cast<size_t>(seq->n_ctx_) * static_cast<size_t>(KVD);
  };

  for (int t = 0; t < n; ++t) {
    DequantizeRow(w.tok_embd, rows[static_cast<size_t>(t)].token, x_.data() + t * E);
    if (c.embd_scale != 1.0f) ScaleInPlace(x_.data() + t * E, E, c.embd_scale);
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& l = w.layers[static_cast<size_t>(il)];

    // --- attention ---
    Norm(x_.data(), l.attn_norm, n, h_.data());
    float* q = qkv_.data();  // rows of QKV: [q | k | v]
    if (any_lora_) PrepareLora(h_.data(), {&l.wqkv, &l.wq, &l.wk, &l.wv});
    if (!l.wqkv.empty()) {
      Linear(l.wqkv, h_.data(), n, q, QKV);
    } else {
      LinearGroup({{&l.wq, q, QKV}, {&l.wk, q + QD, QKV}, {&l.wv, q + QD + KVD, QKV}}, h_.data(), n);
    }
    // Biases, rotary embedding (angles once per position for all heads) and the cache rows: tokens in parallel
    // (each writes only its own row and cache position).
    pool_->ParallelFor(static_cast<size_t>(n), [&](size_t t0, size_t t1) {
      std::vector<float> cs(static_cast<size_t>(c.rope_dim));
      for (auto t = static_cast<int>(t0); t < static_cast<int>(t1); ++t) {
        float* row = q + t * QKV;
        if (!l.bq.empty()) AddInPlace(row, l.bq.f32(), QD);
        if (!l.bk.empty()) AddInPlace(row + QD, l.bk.f32(), KVD);
        if (!l.bv.empty()) AddInPlace(row + QD + KVD, l.bv.f32(), KVD);
        const Row& rt = rows[static_cast<size_t>(t)];
        const int64_t pos = rt.pos;
        RopeAngles(c.rope_dim, pos, c.rope_base, w.rope_freqs.empty() ? nullptr : w.rope_freqs.f32(), cs.data());
        for (int h = 0; h < c.n_head; ++h) RopeWithAngles(row + h * c.head_dim, c.rope_dim, c.rope_style, cs.data());
        for (int h = 0; h < c.n_head_kv; ++h) {
          RopeWithAngles(row + QD + h * c.head_dim, c.rope_dim, c.rope_style, cs.data());
        }
        F32ToF16Row(row + QD, KVD, cache(rt.seq->k_cache_, rt.seq, il) + pos * KVD);
        F32ToF16Row(row + QD + KVD, KVD, cache(rt.seq->v_cache_, rt.seq, il) + pos * KVD);
      }
    });
    // Gather the queries into a dense (n, QD) block for the attention kernel.
    for (int t = 0; t < n; ++t) std::memmove(q + t * QD, q + t * QKV, static_cast<size_t>(QD) * sizeof(float));
    const AttentionParams ap = AttentionParamsFor(c, il);
    for (const Run& run : runs_) {
      AttentionForward(ap, q + run.row0 * QD, run.n, run.pos0, cache(run.seq->k_cache_, run.seq, il),
                       cache(run.seq->v_cache_, run.seq, il), KVD, attn_.data() + run.row0 * QD, pool_.get());
    }
    Linear(l.wo, attn_.data(), n, h_.data(), E);
    if (c.post_norms) Norm(h_.data(), l.post_attn_norm, n, h_.data());
    AddInPlace(x_.data(), h_.data(), n * E);

    // --- feed-forward: down(act(gate(h)) * up(h)) ---
    Norm(x_.data(), l.ffn_norm, n, h_.data());
    const int64_t FS = 2 * FF;  // ffn_ row: [gate | up]
    if (any_lora_) PrepareLora(h_.data(), {&l.w_gate, &l.w_up});
    if (!l.w_gate.empty()) {
      LinearGroup({{&l.w_gate, ffn_.data(), FS}, {&l.w_up, ffn_.data() + FF, FS}}, h_.data(), n);
    } else {
      Linear(l.w_up, h_.data(), n, ffn_.data(), FS);  // Phi-3: fused [gate; up]
    }
    pool_->ParallelFor(static_cast<size_t>(n), [&](size_t t0, size_t t1) {
      for (size_t t = t0; t < t1; ++t) {
        float* row = ffn_.data() + t * static_cast<size_t>(FS);
        if (c.activation == Activation::kSilu) {
          SiluMul(row, row + FF, FF);
        } else {
          GeluTanhMul(row, row + FF, FF);
        }
      }
    });
    // Compact the rows to (n, FF) in order: row t moves over rows < t, so this stays serial.
    for (int t = 1; t < n; ++t)
      std::memmove(ffn_.data() + t * FF, ffn_.data() + t * FS, static_cast<size_t>(FF) * sizeof(float));
    Linear(l.w_down, ffn_.data(), n, h_.data(), E);
    if (c.post_norms) Norm(h_.data(), l.post_ffn_norm, n, h_.data());
    AddInPlace(x_.data(), h_.data(), n * E);
  }
  for (const Run& run : runs_) run.seq->n_past_ = static_cast<int>(run.pos0) + run.n;

  if (first_logit >= n) return;
  const int n_out = n - first_logit;
  // The output projection sees only the rows that want logits: its runs start at row 0.
  for (Run& run : runs_) {
    const int b = std::max(run.row0, first_logit), e = run.row0 + run.n;
    run.row0 = b - first_logit;
    run.n = std::max(0, e - b);
  }
  std::erase_if(runs_, [](const Run& r) { return r.n == 0; });
  Norm(x_.data() + first_logit * E, w.output_norm, n_out, h_.data());
  Linear(w.output, h_.data(), n_out, logits_out, c.n_vocab);
  if (c.final_softcap > 0) SoftCap(logits_out, static_cast<int64_t>(n_out) * c.n_vocab, c.final_softcap);
}

}  // namespace pocketlm
