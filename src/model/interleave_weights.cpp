#include "model/interleave_weights.h"

#include <set>

#include "ops/quant_dot.h"
#include "tensor/quant/interleave.h"

namespace pocketlm {
namespace {

// `done`: tensors already rewritten (two views of one tensor must not interleave it twice).
Status InterleaveOne(GgufFile& f, TensorView* v, std::set<const uint8_t*>* done) {
  if (v->empty() || !quant::HasInterleavedLayout(v->type) || !InterleavedIsFaster(v->type) || v->interleave != 0 ||
      v->n_out() < quant::kInterleaveRows) {
    return Status::Ok();
  }
  if (!done->insert(v->data).second) {
    v->interleave = quant::kInterleaveRows;
    return Status::Ok();
  }
  PLM_ASSIGN_OR_RETURN(uint8_t * data, f.MutableBytes(v->data, v->nbytes));
  quant::InterleaveRows(v->type, data, v->row_bytes(), v->n_out());
  v->interleave = quant::kInterleaveRows;
  return Status::Ok();
}

}  // namespace

Status InterleaveWeights(GgufFile& f, ModelWeights* w) {
  std::set<const uint8_t*> done;
  for (LayerWeights& l : w->layers) {
    for (TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      PLM_RETURN_IF_ERROR(InterleaveOne(f, v, &done));
    }
  }
  PLM_RETURN_IF_ERROR(InterleaveOne(f, &w->output, &done));
  if (w->tok_embd.data == w->output.data) w->tok_embd.interleave = w->output.interleave;
  return Status::Ok();
}

}  // namespace pocketlm
