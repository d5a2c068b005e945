#include "model/interleave_weights.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "ops/quant_dot.h"
#include "tensor/quant/interleave.h"

namespace pocketlm {
namespace {

struct Job {
  uint8_t* data;
  DType type;
  size_t row_bytes;
  int64_t n_out;
};

// Marks *v interleaved and queues its rewrite. `done`: tensors already queued (two views of one tensor must not
// interleave it twice).
Status Plan(GgufFile& f, TensorView* v, std::set<const uint8_t*>* done, std::vector<Job>* jobs) {
  if (v->empty() || !quant::HasInterleavedLayout(v->type) || !InterleavedIsFaster(v->type) || v->interleave != 0 ||
      v->n_out() < quant::kInterleaveRows) {
    return Status::Ok();
  }
  if (done->insert(v->data).second) {
    PLM_ASSIGN_OR_RETURN(uint8_t * data, f.MutableBytes(v->data, v->nbytes));
    jobs->push_back({data, v->type, v->row_bytes(), v->n_out()});
  }
  v->interleave = quant::kInterleaveRows;
  return Status::Ok();
}

}  // namespace

Status InterleaveWeights(GgufFile& f, ModelWeights* w) {
  std::set<const uint8_t*> done;
  std::vector<Job> jobs;
  for (LayerWeights& l : w->layers) {
    for (TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      PLM_RETURN_IF_ERROR(Plan(f, v, &done, &jobs));
    }
  }
  PLM_RETURN_IF_ERROR(Plan(f, &w->output, &done, &jobs));
  if (w->tok_embd.data == w->output.data) w->tok_embd.interleave = w->output.interleave;
  // The rewrite touches every page of those tensors (a copy-on-write fault each): a few threads, tensors claimed
  // one at a time.
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      quant::InterleaveRows(jobs[i].type, jobs[i].data, jobs[i].row_bytes, jobs[i].n_out);
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return Status::Ok();
}

}  // namespace pocketlm
