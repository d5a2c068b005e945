// Runs one LoRA training step and five AdamW steps of pocketlm's trainer on a model and writes everything the
// PyTorch reference (torch_train_reference.py) needs to redo them independently:
//   adapter.gguf  the initial factors (A as PEFT initialises it, B random so that A's gradient is not zero)
//   seq.bin       int32 T, then tokens[T], targets[T], seg_start[T], pos[T] (two packed examples)
//   result.gguf   test.loss, grad.<tensor>.lora_a / .lora_b, test.step_losses[5], test.lr, test.weight_decay
// With "full" as third argument, the same for full fine-tuning: every weight trainable, grad.<tensor> for each.
// With "distill" or "distill-topk": the LoRA step under the distillation loss (ops/distill_loss.h; full vocabulary
// with weight 0.6 and temperature 2, or top-5 with weight 1 and temperature 0.5) with the base model itself as the
// teacher (the student differs by its adapter), and
//   teacher.gguf  the teacher's rows as the loss read them: teacher.logp (T, V or k), teacher.ids (T, k, as f32),
//                 teacher.rest (T); test.distill_weight, test.distill_temp, test.distill_topk
// (no optimizer steps: the AdamW path is the one the cross-entropy case checks).
// Usage: train_step_dump MODEL.gguf OUT_DIR [full|distill|distill-topk]
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf/gguf_writer.h"
#include "model/model.h"
#include "train/distill.h"
#include "train/full_params.h"
#include "train/lora_set.h"
#include "train/optimizer.h"
#include "train/rng.h"
#include "train/train_graph.h"

namespace pocketlm {
namespace {

constexpr int kT = 16;
constexpr int kSplit = 10;  // the second example starts here
constexpr float kLr = 5e-3f;
constexpr float kWeightDecay = 0.01f;
constexpr float kFullLr = 1e-3f;

int RunFull(const Model& model, const SequenceView& sv, float grad_scale, const std::string& out) {
  ThreadPool pool(2);
  // Every layer keeps its activations here, while the LoRA step recomputes them: both paths meet PyTorch.
  auto graph_or = TrainGraph::Create(model, kT, &pool, size_t{1} << 40);
  if (graph_or.ok() && graph_or.value()->recomputes()) return 1;
  auto full_or = FullParams::Create(model);
  if (!graph_or.ok() || !full_or.ok()) return 1;
  TrainGraph& graph = *graph_or.value();
  FullParams& full = *full_or.value();
  graph.SetFullParams(&full);
  auto ce = graph.ForwardBackward(sv, nullptr, grad_scale, 0);
  if (!ce.ok()) return 1;
  GgufWriter w;
  w.SetF32("test.loss", static_cast<float>(ce.value().loss_sum / static_cast<double>(ce.value().n_counted)));
  w.SetF32("test.lr", kFullLr);
  w.SetF32("test.weight_decay", kWeightDecay);
  for (const auto& t : full.tensors()) {
    if (!t->trainable) continue;
    (void)w.AddTensor("grad." + t->name, DType::kF32, t->ne, t->grad.data(), t->grad.size() * 4);
  }
  // Five AdamW steps from the base weights (weight decay on matrices only).
  auto fresh = FullParams::Create(model);
  if (!fresh.ok()) return 1;
  FullParams& train = *fresh.value();
  graph.SetFullParams(&train);
  AdamWConfig ac;
  ac.weight_decay = kWeightDecay;
  AdamW opt(train.Params(), ac);
  std::vector<float> losses;
  for (int step = 0; step < 5; ++step) {
    train.ZeroGrad();
    auto r = graph.ForwardBackward(sv, nullptr, grad_scale, 0);
    if (!r.ok()) return 1;
    losses.push_back(static_cast<float>(r.value().loss_sum / static_cast<double>(r.value().n_counted)));
    opt.Step(kFullLr);
  }
  w.SetF32Array("test.step_losses", losses);
  if (Status s = w.WriteFile(out + "/result.gguf"); !s.ok()) return 1;
  std::printf("full fine-tuning: loss %.6f, %zu parameters\n",
              ce.value().loss_sum / static_cast<double>(ce.value().n_counted), full.n_params());
  return 0;
}

// The distillation step: loss and LoRA gradients, and the teacher rows it used.
int RunDistill(const Model& model, LoraSet& set, TrainGraph& graph, const SequenceView& sv, float grad_scale, int topk,
               const std::string& out) {
  // Full vocabulary: mixed, softened. Top-k: distillation alone, sharpened (the kept tokens then hold more mass and
  // the rest bucket's gradient matters).
  DistillConfig dc;
  dc.params = topk > 0 ? DistillParams{1.0f, 0.5f} : DistillParams{0.6f, 2.0f};
  dc.topk = topk;
  auto teacher_or = DistillTeacher::Create(model, model, dc, kT, std::make_shared<ThreadPool>(2));
  if (!teacher_or.ok()) return 1;
  auto te = teacher_or.value()->Run(sv);
  if (!te.ok()) return 1;
  set.ZeroGrad();
  auto r = graph.ForwardBackward(sv, &set, grad_scale, 0, &te.value(), dc.params);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().message().c_str());
    return 1;
  }
  const int64_t V = model.config().n_vocab, width = topk > 0 ? topk : V;
  GgufWriter tw;
  // Rows without a target were never written: zeros keep the file deterministic (the loss does not read them).
  std::vector<float> logp(static_cast<size_t>(kT * width), 0.0f), ids(logp.size(), 0.0f), rest(kT, 0.0f);
  for (int t = 0; t < kT; ++t) {
    if (sv.targets[t] < 0) continue;
    for (int64_t i = 0; i < width; ++i) {
      logp[static_cast<size_t>(t * width + i)] = te.value().logp[t * width + i];
      if (topk > 0) ids[static_cast<size_t>(t * width + i)] = static_cast<float>(te.value().ids[t * width + i]);
    }
    if (topk > 0) rest[static_cast<size_t>(t)] = te.value().rest[t];
  }
  (void)tw.AddTensor("teacher.logp", DType::kF32, {width, kT}, logp.data(), logp.size() * 4);
  (void)tw.AddTensor("teacher.ids", DType::kF32, {width, kT}, ids.data(), ids.size() * 4);
  (void)tw.AddTensor("teacher.rest", DType::kF32, {kT}, rest.data(), rest.size() * 4);
  if (!tw.WriteFile(out + "/teacher.gguf").ok()) return 1;
  GgufWriter w;
  const double n = static_cast<double>(r.value().n_counted);
  w.SetF32("test.loss", static_cast<float>(r.value().loss_sum / n));
  w.SetF32("test.distill_weight", dc.params.weight);
  w.SetF32("test.distill_temp", dc.params.temp);
  w.SetU32("test.distill_topk", static_cast<uint32_t>(topk));
  for (const LoraModule& m : set.modules()) {
    (void)w.AddTensor("grad." + m.base_name + ".lora_a", DType::kF32, {m.n_in, m.rank}, m.grad_a.data(),
                      m.grad_a.size() * 4);
    (void)w.AddTensor("grad." + m.base_name + ".lora_b", DType::kF32, {m.rank, m.n_out}, m.grad_b.data(),
                      m.grad_b.size() * 4);
  }
  if (!w.WriteFile(out + "/result.gguf").ok()) return 1;
  std::printf("distillation (top-k %d, w %g, T %g): loss %.6f, CE %.6f, KL %.6f per target\n", topk,
              static_cast<double>(dc.params.weight), static_cast<double>(dc.params.temp), r.value().loss_sum / n,
              r.value().ce_sum / n, r.value().kl_sum / n);
  return 0;
}

int Run(const std::string& model_path, const std::string& out, const std::string& mode) {
  const bool full_mode = mode == "full";
  auto model_or = Model::Load(model_path);
  if (!model_or.ok()) {
    std::fprintf(stderr, "%s\n", model_or.status().message().c_str());
    return 1;
  }
  const Model& model = *model_or.value();
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8.0f;
  lc.seed = 7;
  auto set_or = LoraSet::Create(model, lc);
  if (!set_or.ok()) {
    std::fprintf(stderr, "%s\n", set_or.status().message().c_str());
    return 1;
  }
  LoraSet set = std::move(set_or).value();
  SplitMix64 rng(11);
  for (LoraModule& m : set.modules()) {
    for (float& b : m.b) b = (2.0f * rng.NextFloat() - 1.0f) * 0.2f;
  }
  if (Status s = set.WriteGguf(out + "/adapter.gguf", model); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }

  std::vector<int32_t> tokens(kT), targets(kT), seg(kT), pos(kT);
  const int vocab = std::min(model.config().n_vocab, 1000);
  for (int t = 0; t < kT; ++t) {
    tokens[t] = static_cast<int32_t>(rng.Next() % static_cast<uint64_t>(vocab));
    seg[t] = t < kSplit ? 0 : kSplit;
    pos[t] = t - seg[t];
  }
  for (int t = 0; t < kT; ++t) targets[t] = (t + 1 < kT && t + 1 != kSplit && t != 3) ? tokens[t + 1] : -1;
  {
    std::ofstream f(out + "/seq.bin", std::ios::binary);
    const int32_t T = kT;
    f.write(reinterpret_cast<const char*>(&T), 4);
    for (const auto* v : {&tokens, &targets, &seg, &pos}) f.write(reinterpret_cast<const char*>(v->data()), 4 * kT);
  }
  SequenceView sv{tokens.data(), targets.data(), seg.data(), pos.data(), kT};
  int64_t n_targets = 0;
  for (int32_t t : targets) n_targets += t >= 0;
  if (full_mode) return RunFull(model, sv, 1.0f / static_cast<float>(n_targets), out);

  ThreadPool pool(2);
  auto graph_or = TrainGraph::Create(model, kT, &pool, /*activation_budget=*/0);
  if (!graph_or.ok() || !graph_or.value()->recomputes()) return 1;
  TrainGraph& graph = *graph_or.value();
  int64_t n_counted = 0;
  for (int32_t t : targets) n_counted += t >= 0;
  const float grad_scale = 1.0f / static_cast<float>(n_counted);
  if (mode == "distill" || mode == "distill-topk") {
    return RunDistill(model, set, graph, sv, grad_scale, mode == "distill" ? 0 : 5, out);
  }

  set.ZeroGrad();
  auto ce = graph.ForwardBackward(sv, &set, grad_scale, 0);
  if (!ce.ok()) {
    std::fprintf(stderr, "%s\n", ce.status().message().c_str());
    return 1;
  }
  GgufWriter w;
  w.SetF32("test.loss", static_cast<float>(ce.value().loss_sum / static_cast<double>(ce.value().n_counted)));
  w.SetF32("test.lr", kLr);
  w.SetF32("test.weight_decay", kWeightDecay);
  for (const LoraModule& m : set.modules()) {
    (void)w.AddTensor("grad." + m.base_name + ".lora_a", DType::kF32, {m.n_in, m.rank}, m.grad_a.data(),
                      m.grad_a.size() * 4);
    (void)w.AddTensor("grad." + m.base_name + ".lora_b", DType::kF32, {m.rank, m.n_out}, m.grad_b.data(),
                      m.grad_b.size() * 4);
  }

  // Five optimizer steps from the same initial factors.
  auto fresh = LoraSet::Create(model, lc);
  if (!fresh.ok()) return 1;
  LoraSet train = std::move(fresh).value();
  for (size_t i = 0; i < train.modules().size(); ++i) train.modules()[i].b = set.modules()[i].b;
  std::vector<ParamRef> params;
  for (LoraModule& m : train.modules()) {
    params.push_back({m.a.data(), m.grad_a.data(), m.a.size(), true});
    params.push_back({m.b.data(), m.grad_b.data(), m.b.size(), true});
  }
  AdamWConfig ac;
  ac.weight_decay = kWeightDecay;
  AdamW opt(params, ac);
  std::vector<float> losses;
  for (int step = 0; step < 5; ++step) {
    train.ZeroGrad();
    auto r = graph.ForwardBackward(sv, &train, grad_scale, 0);
    if (!r.ok()) return 1;
    losses.push_back(static_cast<float>(r.value().loss_sum / static_cast<double>(r.value().n_counted)));
    opt.Step(kLr);
  }
  w.SetF32Array("test.step_losses", losses);
  if (Status s = w.WriteFile(out + "/result.gguf"); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  std::printf("loss %.6f over %lld targets, %zu LoRA modules\n",
              ce.value().loss_sum / static_cast<double>(ce.value().n_counted),
              static_cast<long long>(ce.value().n_counted), set.modules().size());
  return 0;
}

}  // namespace
}  // namespace pocketlm

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[3] : "";
  if (argc != 3 && !(argc == 4 && (mode == "full" || mode == "distill" || mode == "distill-topk"))) {
    std::fprintf(stderr, "usage: train_step_dump MODEL.gguf OUT_DIR [full|distill|distill-topk]\n");
    return 2;
  }
  return pocketlm::Run(argv[1], argv[2], mode);
}
