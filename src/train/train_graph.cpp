#include "train/train_graph.h"

#include <algorithm>
#include <cstring>

#include "ops/attention_train.h"
#include "ops/elementwise.h"
#include "ops/elementwise_backward.h"
#include "ops/matmul.h"
#include "ops/matmul_backward.h"
#include "train/rng.h"

namespace pocketlm {
namespace {

size_t Sz(int64_t n) {
  return static_cast<size_t>(n);
}

// Dropout keeps an element with probability 1 - p and scales it by 1 / (1 - p) (Srivastava et al. 2014). The
// mask is a pure function of (key, module, element) so the recomputed layer sees the same mask.
bool DropoutKeep(uint64_t key, int module, int64_t element, float p) {
  return HashUniform(key ^ Mix64(static_cast<uint64_t>(module) + 1), static_cast<uint64_t>(element)) >= p;
}

}  // namespace

TrainGraph::TrainGraph(const Model& model, int max_seq_len, ThreadPool* pool, bool keep_all)
    : model_(model), w_(&model.weights()), max_T_(max_seq_len), pool_(pool) {
  const ModelConfig& c = model.config();
  const size_t T = Sz(max_seq_len), E = Sz(c.n_embd), QD = Sz(c.q_dim()), KVD = Sz(c.kv_dim()), FF = Sz(c.n_ff);
  checkpoints_.resize((Sz(c.n_layer) + 1) * T * E);
  for (auto& g : grad_x_) g.resize(T * E);
  acts_.resize(keep_all ? Sz(c.n_layer) : 1);
  for (LayerActs& a : acts_) {
    a.hn1.resize(T * E);
    a.q.resize(T * QD);
    a.k.resize(T * KVD);
    a.v.resize(T * KVD);
    a.att.resize(T * QD);
    a.lse.resize(T * Sz(c.n_head));
    a.o.resize(T * E);
    a.x1.resize(T * E);
    a.hn2.resize(T * E);
    a.gu.resize(T * 2 * FF);
    a.act.resize(T * FF);
    a.d.resize(T * E);
  }
  qkv_.resize(T * (QD + 2 * KVD));
  g_e_.resize(T * E);
  g_e2_.resize(T * E);
  g_q_.resize(T * QD);
  g_k_.resize(T * KVD);
  g_v_.resize(T * KVD);
  g_qkv_.resize(T * (QD + 2 * KVD));
  g_att_.resize(T * QD);
  g_gu_.resize(T * 2 * FF);
  g_act_.resize(T * FF);
  final_h_.resize(T * E);
}

size_t TrainGraph::LayerActivationBytes(const ModelConfig& c, int max_seq_len) {
  const size_t E = Sz(c.n_embd), QD = Sz(c.q_dim()), KVD = Sz(c.kv_dim()), FF = Sz(c.n_ff);
  return Sz(max_seq_len) * (6 * E + 2 * QD + 2 * KVD + Sz(c.n_head) + 3 * FF) * sizeof(float);
}

Result<std::unique_ptr<TrainGraph>> TrainGraph::Create(const Model& model, int max_seq_len, ThreadPool* pool,
                                                       size_t activation_budget) {
  if (pool == nullptr) return InvalidArgument("TrainGraph needs a thread pool");
  if (max_seq_len < 2 || max_seq_len > (1 << 20)) return InvalidArgument("sequence length must be 2..1048576");
  const size_t all = LayerActivationBytes(model.config(), max_seq_len) * Sz(model.config().n_layer);
  const bool keep_all = activation_budget > 0 && all <= activation_budget;
  return std::unique_ptr<TrainGraph>(new TrainGraph(model, max_seq_len, pool, keep_all));
}

size_t TrainGraph::activation_bytes() const {
  size_t n = 0;
  for (const auto* v : {&checkpoints_, &grad_x_[0], &grad_x_[1], &qkv_, &g_e_, &g_e2_, &g_q_, &g_k_, &g_v_, &g_qkv_,
                        &g_att_, &g_gu_, &g_act_, &final_h_, &lora_du_, &lora_tmp_}) {
    n += v->capacity() * sizeof(float);
  }
  for (const LayerActs& a : acts_) {
    for (const auto* v : {&a.hn1, &a.q, &a.k, &a.v, &a.att, &a.lse, &a.o, &a.x1, &a.hn2, &a.gu, &a.act, &a.d}) {
      n += v->capacity() * sizeof(float);
    }
    for (const LoraSaved& s : a.lora) n += (s.u.capacity() + s.x_drop.capacity()) * sizeof(float);
  }
  return n;
}

Status TrainGraph::Check(const SequenceView& s) const {
  const int V = model_.config().n_vocab;
  if (s.T < 1 || s.T > max_T_) {
    return InvalidArgument("sequence of " + std::to_string(s.T) + " tokens; this graph holds 1.." +
                           std::to_string(max_T_));
  }
  if (s.tokens == nullptr || s.targets == nullptr) return InvalidArgument("sequence without tokens or targets");
  for (int t = 0; t < s.T; ++t) {
    if (s.tokens[t] < 0 || s.tokens[t] >= V || s.targets[t] >= V) {
      return InvalidArgument("token or target outside the vocabulary at position " + std::to_string(t));
    }
    if (s.seg_start != nullptr && (s.seg_start[t] < 0 || s.seg_start[t] > t)) {
      return InvalidArgument("segment start " + std::to_string(s.seg_start[t]) + " invalid at position " +
                             std::to_string(t));
    }
    if (s.pos != nullptr && s.pos[t] < 0) return InvalidArgument("negative position at " + std::to_string(t));
  }
  return Status::Ok();
}

void TrainGraph::Embed(const SequenceView& s, float* x) {
  const ModelConfig& c = model_.config();
  const int64_t E = c.n_embd;
  for (int t = 0; t < s.T; ++t) {
    DequantizeRow((*w_).tok_embd, s.tokens[t], x + t * E);
    if (c.embd_scale != 1.0f) ScaleInPlace(x + t * E, E, c.embd_scale);
  }
}

void TrainGraph::Linear(const TensorView& w, const float* x, int T, float* y, int64_t y_stride, bool save) {
  MatMulWeightsT(w, x, T, y, y_stride, /*accumulate=*/false, pool_, &act_scratch_);
  LoraModule* m = loras_ != nullptr ? loras_->Find(w.data) : nullptr;
  if (m == nullptr) return;
  const int64_t r = m->rank, n_in = m->n_in, n_out = m->n_out;
  const float p = loras_->config().dropout;
  const bool dropout = training_ && p > 0.0f;
  LoraSaved* saved = save ? &a_->lora[Sz(m->slot)] : nullptr;
  std::vector<float>& u = saved != nullptr ? saved->u : lora_du_;
  u.resize(Sz(T * r));
  const float* xin = x;
  if (dropout) {
    std::vector<float>& xd = saved != nullptr ? saved->x_drop : lora_tmp_;
    xd.resize(Sz(T * n_in));
    const float keep_scale = 1.0f / (1.0f - p);
    for (int64_t e = 0; e < T * n_in; ++e) {
      xd[Sz(e)] = DropoutKeep(dropout_key_, m->index, e, p) ? x[e] * keep_scale : 0.0f;
    }
    xin = xd.data();
  }
  // u = x_drop A^T : (T, r);  y += s u B^T : (T, n_out)
  GemmF32(false, true, T, r, n_in, 1.0f, xin, n_in, m->a.data(), n_in, 0.0f, u.data(), r, pool_);
  GemmF32(false, true, T, n_out, r, m->scale, u.data(), r, m->b.data(), r, 1.0f, y, y_stride, pool_);
}

void TrainGraph::LinearBackward(const TensorView& w, const float* x, const float* dy, int64_t dy_stride, int T,
                                float* dx, bool accumulate) {
  const int64_t n_in = w.n_in();
  MatMulWeightsBackwardInput(w, dy, T, dy_stride, dx, n_in, accumulate, pool_);
  if (full_ != nullptr) {
    // dW += dy^T x : (n_out, n_in)
    if (float* gw = full_->GradFor(w.data)) {
      GemmF32(true, false, w.n_out(), n_in, T, 1.0f, dy, dy_stride, x, n_in, 1.0f, gw, n_in, pool_);
    }
  }
  LoraModule* m = loras_ != nullptr ? loras_->Find(w.data) : nullptr;
  if (m == nullptr) return;
  const int64_t r = m->rank, n_out = m->n_out;
  const float p = loras_->config().dropout;
  const bool dropout = p > 0.0f;
  const LoraSaved& saved = a_->lora[Sz(m->slot)];
  const float* xin = dropout ? saved.x_drop.data() : x;
  lora_du_.resize(Sz(T * r));
  float* du = lora_du_.data();
  // With u = A x_drop and y = s B u:  du = s dy B (T, r);  dB += s dy^T u;  dA += du^T x_drop;  dx_drop = du A.
  GemmF32(false, false, T, r, n_out, m->scale, dy, dy_stride, m->b.data(), r, 0.0f, du, r, pool_);
  GemmF32(true, false, n_out, r, T, m->scale, dy, dy_stride, saved.u.data(), r, 1.0f, m->grad_b.data(), r, pool_);
  GemmF32(true, false, r, n_in, T, 1.0f, du, r, xin, n_in, 1.0f, m->grad_a.data(), n_in, pool_);
  if (!dropout) {
    GemmF32(false, false, T, n_in, r, 1.0f, du, r, m->a.data(), n_in, 1.0f, dx, n_in, pool_);
    return;
  }
  lora_tmp_.resize(Sz(T * n_in));
  GemmF32(false, false, T, n_in, r, 1.0f, du, r, m->a.data(), n_in, 0.0f, lora_tmp_.data(), n_in, pool_);
  const float keep_scale = 1.0f / (1.0f - p);
  for (int64_t e = 0; e < T * n_in; ++e) {
    if (DropoutKeep(dropout_key_, m->index, e, p)) dx[e] += lora_tmp_[Sz(e)] * keep_scale;
  }
}

void TrainGraph::SetFullParams(FullParams* full) {
  full_ = full;
  w_ = full != nullptr ? &full->weights() : &model_.weights();
}

void TrainGraph::NormWeightGrad(const TensorView& w, const float* x, const float* dy, int T) {
  float* gw = full_ != nullptr && !w.empty() ? full_->GradFor(w.data) : nullptr;
  if (gw == nullptr) return;
  // Serial over tokens: every token adds into the same gain gradient (and a fixed order keeps it deterministic).
  const int64_t E = w.n_in();
  lora_tmp_.resize(Sz(E));
  for (int t = 0; t < T; ++t) {
    RmsNormBackward(x + t * E, w.f32(), E, model_.config().rms_eps, dy + t * E, lora_tmp_.data(), gw);
  }
}

void TrainGraph::BiasGrad(const TensorView& b, const float* dy, int64_t stride, int T) {
  float* gb = full_ != nullptr && !b.empty() ? full_->GradFor(b.data) : nullptr;
  if (gb == nullptr) return;
  for (int t = 0; t < T; ++t) AddInPlace(gb, dy + t * stride, b.n_in());
}

void TrainGraph::LayerForward(int il, const SequenceView& s, const float* x, float* x_out) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = *w_;
  const LayerWeights& l = w.layers[Sz(il)];
  const int T = s.T;
  const int64_t E = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), FF = c.n_ff, QKV = QD + 2 * KVD;
  const float eps = c.rms_eps;
  auto per_token = [&](auto&& fn) {
    pool_->ParallelFor(Sz(T), [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) fn(static_cast<int64_t>(t));
    });
  };

  // --- attention ---
  per_token([&](int64_t t) { RmsNorm(x + t * E, l.attn_norm.f32(), E, eps, a_->hn1.data() + t * E); });
  float* qkv = qkv_.data();
  if (!l.wqkv.empty()) {
    Linear(l.wqkv, a_->hn1.data(), T, qkv, QKV, true);
  } else {
    Linear(l.wq, a_->hn1.data(), T, qkv, QKV, true);
    Linear(l.wk, a_->hn1.data(), T, qkv + QD, QKV, true);
    Linear(l.wv, a_->hn1.data(), T, qkv + QD + KVD, QKV, true);
  }
  const float* ff = w.rope_freqs.empty() ? nullptr : w.rope_freqs.f32();
  per_token([&](int64_t t) {
    const float* row = qkv + t * QKV;
    float* q = a_->q.data() + t * QD;
    float* k = a_->k.data() + t * KVD;
    float* v = a_->v.data() + t * KVD;
    std::memcpy(q, row, Sz(QD) * sizeof(float));
    std::memcpy(k, row + QD, Sz(KVD) * sizeof(float));
    std::memcpy(v, row + QD + KVD, Sz(KVD) * sizeof(float));
    if (!l.bq.empty()) AddInPlace(q, l.bq.f32(), QD);
    if (!l.bk.empty()) AddInPlace(k, l.bk.f32(), KVD);
    if (!l.bv.empty()) AddInPlace(v, l.bv.f32(), KVD);
    const int64_t pos = s.pos != nullptr ? s.pos[t] : t;
    for (int h = 0; h < c.n_head; ++h)
      Rope(q + h * c.head_dim, c.head_dim, c.rope_dim, c.rope_style, pos, c.rope_base, ff);
    for (int h = 0; h < c.n_head_kv; ++h) {
      Rope(k + h * c.head_dim, c.head_dim, c.rope_dim, c.rope_style, pos, c.rope_base, ff);
    }
  });
  const AttentionParams ap = AttentionParamsFor(c, il);
  AttentionTrainForward(ap, a_->q.data(), a_->k.data(), a_->v.data(), KVD, T, s.seg_start, a_->att.data(),
                        a_->lse.data(), pool_);
  Linear(l.wo, a_->att.data(), T, a_->o.data(), E, true);
  per_token([&](int64_t t) {
    float* x1 = a_->x1.data() + t * E;
    if (c.post_norms) {
      RmsNorm(a_->o.data() + t * E, l.post_attn_norm.f32(), E, eps, x1);
    } else {
      std::memcpy(x1, a_->o.data() + t * E, Sz(E) * sizeof(float));
    }
    AddInPlace(x1, x + t * E, E);
  });

  // --- feed-forward: down(act(gate(h)) * up(h)) ---
  per_token([&](int64_t t) { RmsNorm(a_->x1.data() + t * E, l.ffn_norm.f32(), E, eps, a_->hn2.data() + t * E); });
  if (!l.w_gate.empty()) {
    Linear(l.w_gate, a_->hn2.data(), T, a_->gu.data(), 2 * FF, true);
    Linear(l.w_up, a_->hn2.data(), T, a_->gu.data() + FF, 2 * FF, true);
  } else {
    Linear(l.w_up, a_->hn2.data(), T, a_->gu.data(), 2 * FF, true);  // Phi-3: fused [gate; up]
  }
  per_token([&](int64_t t) {
    float* a = a_->act.data() + t * FF;
    const float* g = a_->gu.data() + t * 2 * FF;
    std::memcpy(a, g, Sz(FF) * sizeof(float));
    if (c.activation == Activation::kSilu) {
      SiluMul(a, g + FF, FF);
    } else {
      GeluTanhMul(a, g + FF, FF);
    }
  });
  Linear(l.w_down, a_->act.data(), T, a_->d.data(), E, true);
  per_token([&](int64_t t) {
    float* out = x_out + t * E;
    if (c.post_norms) {
      RmsNorm(a_->d.data() + t * E, l.post_ffn_norm.f32(), E, eps, out);
    } else {
      std::memcpy(out, a_->d.data() + t * E, Sz(E) * sizeof(float));
    }
    AddInPlace(out, a_->x1.data() + t * E, E);
  });
}

void TrainGraph::LayerBackward(int il, const SequenceView& s, const float* x, const float* dx_out, float* dx_in) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = *w_;
  const LayerWeights& l = w.layers[Sz(il)];
  const int T = s.T;
  const int64_t E = c.n_embd, QD = c.q_dim(), KVD = c.kv_dim(), FF = c.n_ff, QKV = QD + 2 * KVD;
  const float eps = c.rms_eps;
  auto per_token = [&](auto&& fn) {
    pool_->ParallelFor(Sz(T), [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) fn(static_cast<int64_t>(t));
    });
  };
  float* ge = g_e_.data();
  float* dx1 = g_e2_.data();

  // --- feed-forward ---  x_out = x1 + [post_norm](d),  d = down(act)
  const float* dd = dx_out;
  if (c.post_norms) {
    per_token([&](int64_t t) {
      RmsNormBackward(a_->d.data() + t * E, l.post_ffn_norm.f32(), E, eps, dx_out + t * E, ge + t * E, nullptr);
    });
    NormWeightGrad(l.post_ffn_norm, a_->d.data(), dx_out, T);
    dd = ge;
  }
  LinearBackward(l.w_down, a_->act.data(), dd, E, T, g_act_.data(), false);
  per_token([&](int64_t t) {
    const float* g = a_->gu.data() + t * 2 * FF;
    float* dg = g_gu_.data() + t * 2 * FF;
    if (c.activation == Activation::kSilu) {
      SiluMulBackward(g, g + FF, g_act_.data() + t * FF, FF, dg, dg + FF);
    } else {
      GeluTanhMulBackward(g, g + FF, g_act_.data() + t * FF, FF, dg, dg + FF);
    }
  });
  if (!l.w_gate.empty()) {
    LinearBackward(l.w_gate, a_->hn2.data(), g_gu_.data(), 2 * FF, T, ge, false);
    LinearBackward(l.w_up, a_->hn2.data(), g_gu_.data() + FF, 2 * FF, T, ge, true);
  } else {
    LinearBackward(l.w_up, a_->hn2.data(), g_gu_.data(), 2 * FF, T, ge, false);
  }
  per_token([&](int64_t t) {
    RmsNormBackward(a_->x1.data() + t * E, l.ffn_norm.f32(), E, eps, ge + t * E, dx1 + t * E, nullptr);
    AddInPlace(dx1 + t * E, dx_out + t * E, E);
  });
  NormWeightGrad(l.ffn_norm, a_->x1.data(), ge, T);

  // --- attention ---  x1 = x + [post_norm](o),  o = wo(attention(rope(q), rope(k), v))
  const float* d_o = dx1;
  if (c.post_norms) {
    per_token([&](int64_t t) {
      RmsNormBackward(a_->o.data() + t * E, l.post_attn_norm.f32(), E, eps, dx1 + t * E, ge + t * E, nullptr);
    });
    NormWeightGrad(l.post_attn_norm, a_->o.data(), dx1, T);
    d_o = ge;
  }
  LinearBackward(l.wo, a_->att.data(), d_o, E, T, g_att_.data(), false);
  const AttentionParams ap = AttentionParamsFor(c, il);
  AttentionTrainBackward(ap, a_->q.data(), a_->k.data(), a_->v.data(), KVD, T, s.seg_start, a_->att.data(),
                         a_->lse.data(), g_att_.data(), g_q_.data(), g_k_.data(), g_v_.data(), pool_);
  const float* ff = w.rope_freqs.empty() ? nullptr : w.rope_freqs.f32();
  per_token([&](int64_t t) {
    const int64_t pos = s.pos != nullptr ? s.pos[t] : t;
    for (int h = 0; h < c.n_head; ++h) {
      RopeBackward(g_q_.data() + t * QD + h * c.head_dim, c.head_dim, c.rope_dim, c.rope_style, pos, c.rope_base, ff);
    }
    for (int h = 0; h < c.n_head_kv; ++h) {
      RopeBackward(g_k_.data() + t * KVD + h * c.head_dim, c.head_dim, c.rope_dim, c.rope_style, pos, c.rope_base, ff);
    }
  });
  BiasGrad(l.bq, g_q_.data(), QD, T);
  BiasGrad(l.bk, g_k_.data(), KVD, T);
  BiasGrad(l.bv, g_v_.data(), KVD, T);
  if (!l.wqkv.empty()) {
    per_token([&](int64_t t) {
      float* row = g_qkv_.data() + t * QKV;
      std::memcpy(row, g_q_.data() + t * QD, Sz(QD) * sizeof(float));
      std::memcpy(row + QD, g_k_.data() + t * KVD, Sz(KVD) * sizeof(float));
      std::memcpy(row + QD + KVD, g_v_.data() + t * KVD, Sz(KVD) * sizeof(float));
    });
    LinearBackward(l.wqkv, a_->hn1.data(), g_qkv_.data(), QKV, T, ge, false);
  } else {
    LinearBackward(l.wq, a_->hn1.data(), g_q_.data(), QD, T, ge, false);
    LinearBackward(l.wk, a_->hn1.data(), g_k_.data(), KVD, T, ge, true);
    LinearBackward(l.wv, a_->hn1.data(), g_v_.data(), KVD, T, ge, true);
  }
  per_token([&](int64_t t) {
    RmsNormBackward(x + t * E, l.attn_norm.f32(), E, eps, ge + t * E, dx_in + t * E, nullptr);
    AddInPlace(dx_in + t * E, dx1 + t * E, E);
  });
  NormWeightGrad(l.attn_norm, x, ge, T);
}

Result<CrossEntropyResult> TrainGraph::Forward(const SequenceView& s, LoraSet* loras) {
  PLM_RETURN_IF_ERROR(Check(s));
  const ModelConfig& c = model_.config();
  const int64_t E = c.n_embd, TE = static_cast<int64_t>(s.T) * E;
  loras_ = loras;
  training_ = false;
  for (LayerActs& a : acts_) a.lora.resize(loras_ != nullptr ? Sz(loras_->max_slots()) : 0);
  float* x = checkpoints_.data();
  float* y = x + TE;
  Embed(s, x);
  for (int il = 0; il < c.n_layer; ++il) {
    SelectLayer(il);
    LayerForward(il, s, x, y);
    std::swap(x, y);
  }
  for (int t = 0; t < s.T; ++t) {
    RmsNorm(x + t * E, (*w_).output_norm.f32(), E, c.rms_eps, final_h_.data() + t * E);
  }
  return FusedCrossEntropy((*w_).output, final_h_.data(), s.targets, s.T, c.final_softcap, 1.0f, nullptr, pool_);
}

Result<CrossEntropyResult> TrainGraph::ForwardBackward(const SequenceView& s, LoraSet* loras, float grad_scale,
                                                       uint64_t dropout_key, const TeacherTargets* teacher,
                                                       const DistillParams& distill) {
  PLM_RETURN_IF_ERROR(Check(s));
  const ModelConfig& c = model_.config();
  const int64_t E = c.n_embd, TE = static_cast<int64_t>(s.T) * E;
  const int L = c.n_layer;
  loras_ = loras;
  training_ = true;
  dropout_key_ = dropout_key;
  for (LayerActs& a : acts_) a.lora.resize(loras_ != nullptr ? Sz(loras_->max_slots()) : 0);
  auto ckpt = [&](int il) { return checkpoints_.data() + static_cast<int64_t>(il) * TE; };

  Embed(s, ckpt(0));
  for (int il = 0; il < L; ++il) {
    SelectLayer(il);
    LayerForward(il, s, ckpt(il), ckpt(il + 1));
  }

  const float* norm_w = (*w_).output_norm.f32();
  for (int t = 0; t < s.T; ++t) RmsNorm(ckpt(L) + t * E, norm_w, E, c.rms_eps, final_h_.data() + t * E);
  float* g_out = full_ != nullptr ? full_->GradFor(w_->output.data) : nullptr;
  const CrossEntropyResult ce = teacher != nullptr
                                    ? FusedDistillLoss(w_->output, final_h_.data(), s.targets, s.T, c.final_softcap,
                                                       *teacher, distill, grad_scale, g_e_.data(), pool_, 32, g_out)
                                    : FusedCrossEntropy(w_->output, final_h_.data(), s.targets, s.T, c.final_softcap,
                                                        grad_scale, g_e_.data(), pool_, 32, g_out);
  float* dx = grad_x_[0].data();
  float* dx_next = grad_x_[1].data();
  for (int t = 0; t < s.T; ++t) {
    RmsNormBackward(ckpt(L) + t * E, norm_w, E, c.rms_eps, g_e_.data() + t * E, dx + t * E, nullptr);
  }
  NormWeightGrad(w_->output_norm, ckpt(L), g_e_.data(), s.T);
  for (int il = L - 1; il >= 0; --il) {
    // With one shared set of buffers, the last layer's activations are still there from the forward pass and the
    // others are recomputed from their checkpointed input (the output lands on the identical values already
    // stored); with a set per layer nothing is recomputed.
    SelectLayer(il);
    if (recomputes() && il != L - 1) LayerForward(il, s, ckpt(il), ckpt(il + 1));
    LayerBackward(il, s, ckpt(il), dx, dx_next);
    std::swap(dx, dx_next);
  }
  // Embedding rows: x0[t] = embd_scale * E[token t], so dE[token t] += embd_scale * dx0[t].
  if (float* g_embd = full_ != nullptr ? full_->GradFor(w_->tok_embd.data) : nullptr) {
    for (int t = 0; t < s.T; ++t) {
      float* row = g_embd + static_cast<int64_t>(s.tokens[t]) * E;
      for (int64_t i = 0; i < E; ++i) row[i] += c.embd_scale * dx[t * E + i];
    }
  }
  training_ = false;
  return ce;
}

}  // namespace pocketlm
