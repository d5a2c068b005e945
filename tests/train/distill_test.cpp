// Distillation in the trainer (train/distill.h, ops/distill_loss.h) on random models made here: the vocabulary
// checks (size, token texts, parameters), the teacher's stored rows against the inference Context run on each
// packed example alone, a whole training step's LoRA gradients against finite differences of the distillation loss
// (full vocabulary and top-k; the stand-in for a PyTorch comparison where torch is absent), and a short distillation
// run bringing the student's held-out distributions closer to the teacher's.
#include "train/distill.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "lora/adapter.h"
#include "lora_grad_check.h"
#include "model/context.h"
#include "test_models.h"
#include "train/rng.h"
#include "train/trainer.h"

namespace pocketlm {
namespace {

mkmodel::RandomModelOptions Shape(uint32_t seed) {
  mkmodel::RandomModelOptions o;
  o.seed = seed;
  o.init_std = 0.05;  // as in train_graph_test: small enough a slope for finite differences
  return o;
}

std::unique_ptr<Model> Load(const std::string& path) {
  auto m = Model::Load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// A copy of `model_path`'s tokenizer.* keys with token `id`'s text replaced: same size, different vocabulary.
std::string VocabWithChangedToken(const std::string& model_path, int32_t id) {
  auto f = GgufFile::Open(model_path);
  EXPECT_TRUE(f.ok());
  GgufWriter w;
  for (const GgufKv& kv : f.value().kvs()) {
    if (kv.key.starts_with("tokenizer.")) w.Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  }
  auto tokens = f.value().GetArray("tokenizer.ggml.tokens", GgufType::kString);
  EXPECT_TRUE(tokens.ok());
  std::vector<std::string> texts(tokens.value()->strings.begin(), tokens.value()->strings.end());
  texts[static_cast<size_t>(id)] += "x";
  w.SetStringArray("tokenizer.ggml.tokens", std::move(texts));
  const std::string path = ::testing::TempDir() + "/distill_test_vocab.gguf";
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

TEST(DistillCheckTest, VocabularyAndParameters) {
  const std::string student_path = testing_util::RandomModel(Shape(1));
  auto student = Load(student_path);
  auto teacher = Load(testing_util::RandomModel(Shape(2)));
  ASSERT_TRUE(student && teacher);
  DistillConfig c;
  EXPECT_TRUE(CheckDistillable(*student, *teacher, c).ok());
  EXPECT_EQ(VocabFingerprint(student->tokenizer()), VocabFingerprint(teacher->tokenizer()));

  mkmodel::RandomModelOptions o = Shape(3);
  o.vocab_path = VocabWithChangedToken(student_path, 300);
  auto renamed = Load(testing_util::RandomModel(o));
  ASSERT_TRUE(renamed);
  ASSERT_EQ(renamed->config().n_vocab, student->config().n_vocab);
  Status s = CheckDistillable(*student, *renamed, c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("different token texts"), std::string::npos) << s.message();

  const char* golden = std::getenv("PLM_GOLDEN_DIR");
  const std::string other = std::string(golden ? golden : "") + "/models/llama-kq-f32.gguf";
  if (golden != nullptr && std::ifstream(other)) {
    auto big = Load(other);
    ASSERT_TRUE(big);
    s = CheckDistillable(*student, *big, c);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("vocabulary differs"), std::string::npos) << s.message();
  }

  c.topk = student->config().n_vocab + 1;
  s = CheckDistillable(*student, *teacher, c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--distill-topk"), std::string::npos) << s.message();
  c.topk = student->config().n_vocab;  // allowed: every token, no rest
  EXPECT_TRUE(CheckDistillable(*student, *teacher, c).ok());
  c.topk = 0;
  c.params.temp = 0;
  EXPECT_FALSE(CheckDistillable(*student, *teacher, c).ok());
  c.params.temp = 1;
  c.params.weight = 1.5f;
  EXPECT_FALSE(CheckDistillable(*student, *teacher, c).ok());
}

// Two packed examples (5 and 7 tokens), the first's last target and two prompt positions ignored.
struct Packed {
  std::vector<int32_t> tokens, targets, seg, pos;
  SequenceView View() const { return {tokens.data(), targets.data(), seg.data(), pos.data(), Len()}; }
  int Len() const { return static_cast<int>(tokens.size()); }
};
Packed MakePacked(int n_vocab, uint64_t seed) {
  Packed p;
  SplitMix64 rng(seed);
  const int lens[2] = {5, 7};
  int start = 0;
  for (int len : lens) {
    for (int i = 0; i < len; ++i) {
      p.tokens.push_back(static_cast<int32_t>(3 + rng.Next() % static_cast<uint64_t>(n_vocab - 3)));
      p.seg.push_back(start);
      p.pos.push_back(i);
    }
    for (int i = 0; i < len; ++i) p.targets.push_back(i + 1 < len ? p.tokens[static_cast<size_t>(start + i + 1)] : -1);
    start += len;
  }
  p.targets[6] = p.targets[7] = -1;
  return p;
}

TEST(DistillTeacherTest, RowsMatchTheContextOnEachExample) {
  auto student = Load(testing_util::RandomModel(Shape(1)));
  auto teacher = Load(testing_util::RandomModel(Shape(2)));
  ASSERT_TRUE(student && teacher);
  const int V = teacher->config().n_vocab;
  const Packed p = MakePacked(V, 11);
  const float temp = 1.7f;
  // The reference: a fresh context per example, log softmax(z / T) in double.
  std::vector<double> want(static_cast<size_t>(p.Len() * V));
  auto ctx = Context::Create(*teacher, ContextParams{});
  ASSERT_TRUE(ctx.ok());
  for (int s0 : {0, 5}) {
    const int n = s0 == 0 ? 5 : 7;
    ctx.value()->Reset();
    std::vector<float> z;
    ASSERT_TRUE(
        ctx.value()->Eval(std::span<const int32_t>(p.tokens.data() + s0, static_cast<size_t>(n)), true, &z).ok());
    for (int i = 0; i < n; ++i) {
      const float* row = z.data() + static_cast<size_t>(i) * V;
      const double mx = *std::max_element(row, row + V);
      double sum = 0;
      for (int j = 0; j < V; ++j) sum += std::exp((row[j] - mx) / temp);
      for (int j = 0; j < V; ++j) want[static_cast<size_t>((s0 + i) * V + j)] = (row[j] - mx) / temp - std::log(sum);
    }
  }
  auto pool = std::make_shared<ThreadPool>(2);
  for (int k : {0, 6}) {
    DistillConfig c;
    c.params.temp = temp;
    c.topk = k;
    auto d = DistillTeacher::Create(*student, *teacher, c, 16, pool);
    ASSERT_TRUE(d.ok()) << d.status().message();
    auto r = d.value()->Run(p.View());
    ASSERT_TRUE(r.ok()) << r.status().message();
    const TeacherTargets& te = r.value();
    ASSERT_EQ(te.k, k);
    for (int t = 0; t < p.Len(); ++t) {
      if (p.targets[static_cast<size_t>(t)] < 0) continue;
      const double* w = want.data() + static_cast<size_t>(t) * V;
      if (k == 0) {
        for (int j = 0; j < V; ++j) ASSERT_NEAR(te.logp[t * V + j], w[j], 1e-4) << "t=" << t << " j=" << j;
        continue;
      }
      // The k largest, in decreasing order, and the rest mass completing them to 1.
      std::vector<int32_t> order(static_cast<size_t>(V));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return w[a] > w[b]; });
      double mass = te.rest[t];
      for (int i = 0; i < k; ++i) {
        EXPECT_EQ(te.ids[t * k + i], order[static_cast<size_t>(i)]) << "t=" << t << " i=" << i;
        EXPECT_NEAR(te.logp[t * k + i], w[order[static_cast<size_t>(i)]], 1e-4);
        mass += std::exp(double{te.logp[t * k + i]});
      }
      EXPECT_NEAR(mass, 1.0, 1e-6) << "t=" << t;
      EXPECT_GT(te.rest[t], 0.0f);
    }
  }
}

// Loss of one step of the whole model under the distillation loss, and the LoRA gradients.
double DistillStep(const Model& student, LoraSet& set, const Packed& p, const TeacherTargets& te,
                   const DistillParams& dp) {
  ThreadPool pool(2);
  auto g = TrainGraph::Create(student, p.Len(), &pool);
  EXPECT_TRUE(g.ok());
  set.ZeroGrad();
  auto r = g.value()->ForwardBackward(p.View(), &set, 1.0f, 0, &te, dp);
  EXPECT_TRUE(r.ok());
  return r.ok() ? r.value().loss_sum : NAN;
}

TEST(DistillTrainGraphTest, LoraGradientsMatchFiniteDifferences) {
  auto student = Load(testing_util::RandomModel(Shape(1)));
  auto teacher = Load(testing_util::RandomModel(Shape(2)));
  ASSERT_TRUE(student && teacher);
  const Packed p = MakePacked(student->config().n_vocab, 12);
  for (int k : {0, 5}) {
    DistillConfig c;
    c.params = {0.6f, 2.0f};
    c.topk = k;
    auto d = DistillTeacher::Create(*student, *teacher, c, p.Len(), std::make_shared<ThreadPool>(2));
    ASSERT_TRUE(d.ok());
    auto te = d.value()->Run(p.View());
    ASSERT_TRUE(te.ok());
    LoraConfig lc;
    lc.rank = 4;
    lc.alpha = 8;
    auto made = LoraSet::Create(*student, lc);
    ASSERT_TRUE(made.ok());
    LoraSet set = std::move(made).value();
    train_test::RandomizeLoraB(set);
    DistillStep(*student, set, p, te.value(), c.params);
    train_test::ExpectLargestLoraGradientsMatchFiniteDifferences(
        set.modules()[3], [&] { return DistillStep(*student, set, p, te.value(), c.params); },
        "k=" + std::to_string(k) + " ");
  }
}

// Sequences of random tokens (every position trained), as a SequenceSource.
class RandomSource : public SequenceSource {
 public:
  RandomSource(int n, int len, int n_vocab, uint64_t seed) {
    SplitMix64 rng(seed);
    for (int s = 0; s < n; ++s) {
      PackedSequence q;
      for (int i = 0; i < len; ++i) q.tokens.push_back(static_cast<int32_t>(3 + rng.Next() % (n_vocab - 3)));
      for (int i = 0; i < len; ++i) q.targets.push_back(i + 1 < len ? q.tokens[static_cast<size_t>(i + 1)] : -1);
      q.n_tokens = len;
      seqs_.push_back(std::move(q));
    }
  }
  size_t SizeOfEpoch(int64_t) override { return seqs_.size(); }
  const PackedSequence& Get(int64_t, size_t i) override { return seqs_[i]; }
  const std::vector<PackedSequence>& seqs() const { return seqs_; }

 private:
  std::vector<PackedSequence> seqs_;
};

// Mean KL(teacher || student) over every next-token position of `src`, from the inference contexts.
double HeldOutKl(const Model& student, const LoraAdapter* adapter, const Model& teacher, const RandomSource& src) {
  auto s = Context::Create(student, ContextParams{});
  auto t = Context::Create(teacher, ContextParams{});
  EXPECT_TRUE(s.ok() && t.ok());
  if (adapter != nullptr) {
    EXPECT_TRUE(s.value()->SetAdapters({{adapter, 1.0f}}).ok());
  }
  const int V = student.config().n_vocab;
  double kl = 0;
  int64_t n = 0;
  for (const PackedSequence& q : src.seqs()) {
    std::vector<float> zs, zt;
    s.value()->Reset();
    t.value()->Reset();
    EXPECT_TRUE(s.value()->Eval(q.tokens, true, &zs).ok());
    EXPECT_TRUE(t.value()->Eval(q.tokens, true, &zt).ok());
    for (size_t i = 0; i + 1 < q.tokens.size(); ++i) {
      auto log_softmax = [V](const float* z, std::vector<double>* out) {
        const double mx = *std::max_element(z, z + V);
        double sum = 0;
        for (int j = 0; j < V; ++j) sum += std::exp(z[j] - mx);
        out->resize(static_cast<size_t>(V));
        for (int j = 0; j < V; ++j) (*out)[static_cast<size_t>(j)] = z[j] - mx - std::log(sum);
      };
      std::vector<double> ls, lt;
      log_softmax(zs.data() + i * static_cast<size_t>(V), &ls);
      log_softmax(zt.data() + i * static_cast<size_t>(V), &lt);
      for (int j = 0; j < V; ++j) kl += std::exp(lt[j]) * (lt[j] - ls[j]);
      ++n;
    }
  }
  return kl / static_cast<double>(n);
}

TEST(DistillTrainerTest, LowersHeldOutKlToTheTeacher) {
  // The demo initialisation for both: output rows large enough for the student to express the teacher's sharp
  // distributions (LoRA does not adapt the output projection; the small-init student's logits stay near uniform).
  mkmodel::RandomModelOptions so = Shape(1), to = Shape(2);
  so.init_std = to.init_std = 0;
  auto student = Load(testing_util::RandomModel(so));
  auto teacher = Load(testing_util::RandomModel(to));
  ASSERT_TRUE(student && teacher);
  const int V = student->config().n_vocab;
  RandomSource train(96, 32, V, 1), held_out(4, 32, V, 2);
  const double before = HeldOutKl(*student, nullptr, *teacher, held_out);
  for (int k : {0, 8}) {
    TrainerConfig tc;
    tc.lora.rank = 8;
    tc.lora.alpha = 16;
    tc.seq_len = 32;
    tc.batch_tokens = 64;
    tc.steps = 48;
    tc.lr = 1e-2f;
    tc.teacher = teacher.get();
    tc.distill.params = {1.0f, 1.0f};
    tc.distill.topk = k;
    auto tr = Trainer::Create(*student, tc, &train, nullptr);
    ASSERT_TRUE(tr.ok()) << tr.status().message();
    double first_kl = -1;
    auto sum = tr.value()->Run([&](const TrainEvent& e) {
      if (e.kind == TrainEvent::kStep && first_kl < 0) first_kl = e.kl;
    });
    ASSERT_TRUE(sum.ok()) << sum.status().message();
    EXPECT_GT(first_kl, 0.0) << "the step event reports the KL part";
    const std::string path = ::testing::TempDir() + "/distill_test_adapter.gguf";
    ASSERT_TRUE(tr.value()->WriteOutput(path).ok());
    auto adapter = LoraAdapter::Load(path);
    ASSERT_TRUE(adapter.ok());
    const double after = HeldOutKl(*student, adapter.value().get(), *teacher, held_out);
    std::printf("  k=%d: held-out KL(teacher || student) %.4f -> %.4f, train loss %.4f -> %.4f\n", k, before, after,
                sum.value().first_loss, sum.value().last_loss);
    EXPECT_LT(after, 0.8 * before) << "k=" << k;
  }
}

TEST(DistillTrainerTest, TeacherEqualToStudentGivesZeroLoss) {
  const std::string path = testing_util::RandomModel(Shape(1));
  auto student = Load(path);
  auto teacher = Load(path);
  ASSERT_TRUE(student && teacher);
  RandomSource train(2, 16, student->config().n_vocab, 3);
  TrainerConfig tc;
  tc.seq_len = 16;
  tc.batch_tokens = 16;
  tc.steps = 1;
  tc.teacher = teacher.get();
  tc.distill.params = {1.0f, 2.0f};
  auto tr = Trainer::Create(*student, tc, &train, nullptr);
  ASSERT_TRUE(tr.ok());
  TrainEvent step;
  ASSERT_TRUE(tr.value()
                  ->Run([&](const TrainEvent& e) {
                    if (e.kind == TrainEvent::kStep) step = e;
                  })
                  .ok());
  // LoRA starts at B = 0: the student is the teacher (up to the two forward passes' summation orders).
  EXPECT_NEAR(step.kl, 0.0, 1e-5);
  EXPECT_NEAR(step.loss, 0.0, 1e-4);
  EXPECT_GT(step.ce, 1.0);
}

}  // namespace
}  // namespace pocketlm
