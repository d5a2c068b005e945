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
  TensorView* view;
  uint8_t* data = nullptr;  // writable
};

}  // namespace

Status InterleaveWeights(GgufFile& f, ModelWeights* w) {
  // Every view of a type with a kernel here, each tensor once (tied views share data).
  std::vector<Job> jobs;
  std::set<const uint8_t*> seen;
  std::vector<TensorView*> views;
  for (LayerWeights& l : w->layers) {
    for (TensorView* v : {&l.wq, &l.wk, &l.wv, &l.wqkv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) views.push_back(v);
  }
  views.push_back(&w->output);
  for (TensorView* v : views) {
    if (v->empty() || !quant::HasInterleavedLayout(v->type) || !InterleavedIsFaster(v->type) || v->interleave != 0 ||
        v->n_out() < quant::kInterleaveRows || !seen.insert(v->data).second) {
      continue;
    }
    jobs.push_back({v});
  }
  // Writable first, all or nothing: a mapping that cannot be written (no memory for private copies) keeps the file's
  // layout, which every kernel reads too.
  for (Job& j : jobs) {
    auto data = f.MutableBytes(j.view->data, j.view->nbytes);
    if (!data.ok()) return Status::Ok();
    j.data = *data;
  }
  // The rewrite touches every page of those tensors (a copy-on-write fault each): a few threads, tensors claimed
  // one at a time.
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      const TensorView& v = *jobs[i].view;
      quant::InterleaveRows(v.type, jobs[i].data, v.row_bytes(), v.n_out());
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  // Mark every view of a rewritten tensor (the token embedding when it is the output matrix).
  views.push_back(&w->tok_embd);
  for (const Job& j : jobs) {
    for (TensorView* v : views) {
      if (v->data == j.view->data) v->interleave = quant::kInterleaveRows;
    }
  }
  return Status::Ok();
}

}  // namespace pocketlm
