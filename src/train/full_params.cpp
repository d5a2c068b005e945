#include "train/full_params.h"

#include <algorithm>

#include "io/gguf/gguf_writer.h"
#include "ops/matmul.h"

namespace pocketlm {

Result<std::unique_ptr<FullParams>> FullParams::Create(const Model& model) {
  std::unique_ptr<FullParams> p(new FullParams());
  p->weights_ = model.weights();
  // One master per distinct base tensor: a tied output shares the embedding's master (and its gradient).
  std::unordered_map<const uint8_t*, Tensor*> by_base;
  auto redirect = [&](TensorView& v, bool trainable) {
    if (v.empty()) return;
    Tensor*& t = by_base[v.data];
    if (t == nullptr) {
      auto owned = std::make_unique<Tensor>();
      owned->name = std::string(v.name);
      const int64_t rows = v.n_out(), cols = v.n_in();
      owned->ne = rows > 1 ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols};
      owned->matrix = rows > 1;
      owned->trainable = trainable;
      owned->value.resize(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r) DequantizeRow(v, r, owned->value.data() + r * cols);
      owned->grad.assign(trainable ? owned->value.size() : 0, 0.0f);
      t = owned.get();
      p->tensors_.push_back(std::move(owned));
      p->by_data_[reinterpret_cast<const uint8_t*>(t->value.data())] = t;
    }
    v.type = DType::kF32;
    v.data = reinterpret_cast<const uint8_t*>(t->value.data());
    v.nbytes = t->value.size() * sizeof(float);
  };
  ModelWeights& w = p->weights_;
  redirect(w.tok_embd, true);
  for (LayerWeights& l : w.layers) {
    for (TensorView* v : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bq, &l.bk, &l.bv, &l.wo, &l.post_attn_norm,
                          &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down, &l.post_ffn_norm}) {
      redirect(*v, true);
    }
  }
  redirect(w.output_norm, true);
  redirect(w.output, true);
  redirect(w.rope_freqs, false);
  return p;
}

float* FullParams::GradFor(const uint8_t* data) {
  auto it = by_data_.find(data);
  if (it == by_data_.end() || !it->second->trainable) return nullptr;
  return it->second->grad.data();
}

std::vector<ParamRef> FullParams::Params() {
  std::vector<ParamRef> out;
  for (auto& t : tensors_) {
    if (t->trainable) out.push_back({t->value.data(), t->grad.data(), t->value.size(), t->matrix});
  }
  return out;
}

void FullParams::ZeroGrad() {
  for (auto& t : tensors_) std::fill(t->grad.begin(), t->grad.end(), 0.0f);
}

size_t FullParams::n_params() const {
  size_t n = 0;
  for (const auto& t : tensors_) n += t->trainable ? t->value.size() : 0;
  return n;
}

Status FullParams::WriteGguf(const std::string& path, const Model& base) const {
  GgufWriter w;
  for (const GgufKv& kv : base.file().kvs()) {
    if (kv.key == "general.file_type") continue;
    w.Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  }
  w.SetU32("general.file_type", 0);  // LLAMA_FTYPE_ALL_F32
  for (const auto& t : tensors_) {
    PLM_RETURN_IF_ERROR(w.AddTensor(t->name, DType::kF32, t->ne, t->value.data(), t->value.size() * sizeof(float)));
  }
  return w.WriteFile(path);
}

}  // namespace pocketlm
