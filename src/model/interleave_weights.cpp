#include "model/interleave_weights.h"

#include <set>

#include "tensor/quant/interleave.h"

namespace pocketlm {
namespace {

// `done`: tensors already rewritten (two views of one tensor must not interleave it twice).
Status InterleaveOne(GgufFile& f, TensorView* v, std::set<const uint8_t*>* done) {
  if (v->empty() || v->type != DType::kQ4_0 || v->interleave != 0 || v->n_out() < quant::kInterleaveRows) {
    return Status::Ok();
  }
  if (!done->insert(v->data).second) {
    v->interleave = quant::kInterleaveRows;
    return Status::Ok();
  }
  PLM_ASSIGN_OR_RETURN(uint8_t * data, f.MutableBytes(v->data, v->nbytes));
  quant::InterleaveQ4_0Rows(data, v->row_bytes(), v->n_out());
  v->interleave = quant::kInterleaveRows;
  return Status::Ok();
}

}  // namespace

Status InterleaveQ4_0Weights(GgufFile& f, ModelWeights* w) {
  std::set<const uint8_t*> done;
  for (LayerWeights& l : w->layers) {
    for (TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      PLM_RETURN_IF_ERROR(InterleaveOne(f, v, &done));
    }
  }
  if (w->output.data != w->tok_embd.data) PLM_RETURN_IF_ERROR(InterleaveOne(f, &w->output, &done));
  return Status::Ok();
}

}  // namespace pocketlm
