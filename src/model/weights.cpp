#include "model/weights.h"

#include "ops/matmul.h"
#include "tensor/quant/quant.h"

namespace pocketlm {

namespace {

class Binder {
 public:
  Binder(const GgufFile& f) : f_(f) {}

  // A 2-D weight of a linear map n_in -> n_out (ggml ne = [n_in, n_out]).
  Status Matrix(const std::string& name, int64_t n_in, int64_t n_out, bool required, TensorView* out) {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) return required ? Missing(name) : Status::Ok();
    if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out) {
      return Corrupt("model '" + f_.path() + "': tensor '" + name + "' has shape " + ShapeString(*t) + ", expected [" +
                     std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
    }
    if (!MatMulSupports(t->type)) {
      return Unsupported("model '" + f_.path() + "': tensor '" + name + "' is stored as " +
                         std::string(DTypeName(t->type)) + ", which pocketlm cannot read yet (it reads " +
                         quant::ReadableTypeNames() + ")");
    }
    *out = ViewOf(*t);
    return Status::Ok();
  }

  // A 1-D f32 vector of n values (norm weights, biases, rope factors).
  Status Vector(const std::string& name, int64_t n, bool required, TensorView* out) {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (t == nullptr) return required ? Missing(name) : Status::Ok();
    if (t->n_elements() != n || t->ne[0] != n) {
      return Corrupt("model '" + f_.path() + "': tensor '" + name + "' has shape " + ShapeString(*t) + ", expected [" +
                     std::to_string(n) + "]");
    }
    if (t->type != DType::kF32) {
      return Unsupported("model '" + f_.path() + "': vector tensor '" + name + "' is " +
                         std::string(DTypeName(t->type)) + " (only f32 is supported for norms and biases)");
    }
    *out = ViewOf(*t);
    return Status::Ok();
  }

  bool Has(const std::string& name) const { return f_.FindTensor(name) != nullptr; }

 private:
  Status Missing(const std::string& name) const {
    return Corrupt("model '" + f_.path() + "' lacks tensor '" + name + "'");
  }
  const GgufFile& f_;
};

}  // namespace

Result<ModelWeights> BindWeights(const GgufFile& f, const ModelConfig& c) {
  Binder b(f);
  ModelWeights w;
  const int64_t E = c.n_embd;
  PLM_RETURN_IF_ERROR(b.Matrix("token_embd.weight", E, c.n_vocab, true, &w.tok_embd));
  PLM_RETURN_IF_ERROR(b.Vector("output_norm.weight", E, true, &w.output_norm));
  PLM_RETURN_IF_ERROR(b.Matrix("output.weight", E, c.n_vocab, false, &w.output));
  if (w.output.empty()) w.output = w.tok_embd;  // tied embeddings
  PLM_RETURN_IF_ERROR(b.Vector("rope_freqs.weight", c.rope_dim / 2, false, &w.rope_freqs));

  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    PLM_RETURN_IF_ERROR(b.Vector(p + "attn_norm.weight", E, true, &l.attn_norm));
    if (b.Has(p + "attn_qkv.weight")) {
      PLM_RETURN_IF_ERROR(b.Matrix(p + "attn_qkv.weight", E, c.q_dim() + 2 * c.kv_dim(), true, &l.wqkv));
    } else {
      PLM_RETURN_IF_ERROR(b.Matrix(p + "attn_q.weight", E, c.q_dim(), true, &l.wq));
      PLM_RETURN_IF_ERROR(b.Matrix(p + "attn_k.weight", E, c.kv_dim(), true, &l.wk));
      PLM_RETURN_IF_ERROR(b.Matrix(p + "attn_v.weight", E, c.kv_dim(), true, &l.wv));
      PLM_RETURN_IF_ERROR(b.Vector(p + "attn_q.bias", c.q_dim(), false, &l.bq));
      PLM_RETURN_IF_ERROR(b.Vector(p + "attn_k.bias", c.kv_dim(), false, &l.bk));
      PLM_RETURN_IF_ERROR(b.Vector(p + "attn_v.bias", c.kv_dim(), false, &l.bv));
    }
    PLM_RETURN_IF_ERROR(b.Matrix(p + "attn_output.weight", c.q_dim(), E, true, &l.wo));
    PLM_RETURN_IF_ERROR(b.Vector(p + "ffn_norm.weight", E, true, &l.ffn_norm));
    if (b.Has(p + "ffn_gate.weight")) {
      PLM_RETURN_IF_ERROR(b.Matrix(p + "ffn_gate.weight", E, c.n_ff, true, &l.w_gate));
      PLM_RETURN_IF_ERROR(b.Matrix(p + "ffn_up.weight", E, c.n_ff, true, &l.w_up));
    } else {
      PLM_RETURN_IF_ERROR(b.Matrix(p + "ffn_up.weight", E, 2 * static_cast<int64_t>(c.n_ff), true, &l.w_up));
    }
    PLM_RETURN_IF_ERROR(b.Matrix(p + "ffn_down.weight", c.n_ff, E, true, &l.w_down));
    if (c.post_norms) {
      PLM_RETURN_IF_ERROR(b.Vector(p + "post_attention_norm.weight", E, true, &l.post_attn_norm));
      PLM_RETURN_IF_ERROR(b.Vector(p + "post_ffw_norm.weight", E, true, &l.post_ffn_norm));
    }
  }
  return w;
}

uint64_t DecodeWeightBytes(const ModelWeights& w) {
  uint64_t total = w.output.nbytes + w.output_norm.nbytes + w.tok_embd.row_bytes();
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bq, &l.bk, &l.bv, &l.wo,
                                &l.post_attn_norm, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down, &l.post_ffn_norm}) {
      total += t->nbytes;
    }
  }
  return total;
}

}  // namespace pocketlm
