// Calibrate (calibrate/calibrate.h): the importance matrix of llama-kq-f32 on calib.txt against llama-imatrix's own
// file (../shared/golden/imatrix), and on random models (tests/support) the properties that need no reference: the
// input of blk.0's q/k/v products computed independently from the token embeddings, the entries and their counts,
// chunking, the errors, progress, and the observer left detached.
#include "calibrate/calibrate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../base/test_tmpdir.h"
#include "io/gguf/gguf_reader.h"
#include "model/model.h"
#include "test_models.h"

namespace pocketlm {
namespace {

using quantize::ImatrixEntry;
using quantize::ImportanceMatrix;

const char* const kProducts[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : "";
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Context> ctx;
};

Loaded Load(const std::string& path, int n_ctx, int n_batch) {
  Loaded l;
  auto m = Model::Load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return l;
  l.model = std::move(m).value();
  ContextParams p;
  p.n_ctx = n_ctx;
  p.n_batch = n_batch;
  auto c = Context::Create(*l.model, p);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (c.ok()) l.ctx = std::move(c).value();
  return l;
}

// --- conformance with llama-imatrix ---

// llama-imatrix -m llama-kq-f32.gguf -f calib.txt -c 256 (../shared/golden/imatrix/README.md): the same entries, 53
// calls each, and every value within 1e-3 of its tensor's largest value (float sums in a different order).
TEST(CalibrateGolden, MatchesLlamaImatrix) {
#ifdef PLM_TEST_UNDER_EMULATOR
  GTEST_SKIP() << "runs on x86 only: 53 chunks take minutes under qemu-user";
#endif
  const std::string dir = GoldenDir();
  const std::string model = dir + "/models/llama-kq-f32.gguf", text = dir + "/imatrix/calib.txt",
                    ref_path = dir + "/imatrix/llama-kq.imatrix";
  for (const std::string& p : {model, text, ref_path}) {
    if (dir.empty() || !std::filesystem::exists(p)) {
      GTEST_SKIP() << "'" << p << "' is absent (set PLM_GOLDEN_DIR to ../shared/golden)";
    }
  }
  Loaded l = Load(model, 256, 256);
  ASSERT_NE(l.ctx, nullptr);
  std::ifstream f(text, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto tokens = l.model->tokenizer().Encode(s, /*add_special=*/true, /*parse_special=*/false);
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  ASSERT_EQ(tokens->size(), 13616u);  // the README's count: the same tokens llama-imatrix cut into chunks

  CalibrateOptions o;
  o.dataset = "calib.txt";
  auto got = Calibrate(*l.ctx, tokens.value(), o);
  ASSERT_TRUE(got.ok()) << got.status().message();
  auto ref = quantize::ReadImatrix(ref_path);
  ASSERT_TRUE(ref.ok()) << ref.status().message();

  EXPECT_EQ(got->chunk_count, 53);
  EXPECT_EQ(got->chunk_count, ref->chunk_count);
  EXPECT_EQ(got->chunk_size, 256);
  EXPECT_EQ(got->dataset, ref->dataset);
  std::vector<std::string> got_names, ref_names;
  for (const auto& [name, e] : got->entries) got_names.push_back(name);
  for (const auto& [name, e] : ref->entries) ref_names.push_back(name);
  ASSERT_EQ(got_names, ref_names);

  double worst = 0;
  std::string worst_name;
  for (const auto& [name, r] : ref->entries) {
    const ImatrixEntry& g = got->entries.at(name);
    EXPECT_EQ(g.ncall, 53) << name;
    EXPECT_EQ(g.ncall, r.ncall) << name;
    ASSERT_EQ(g.values.size(), r.values.size()) << name;
    const float top = *std::max_element(r.values.begin(), r.values.end());
    ASSERT_GT(top, 0) << name;
    int bad = 0;
    for (size_t i = 0; i < r.values.size(); ++i) {
      const double d = std::fabs(static_cast<double>(g.values[i]) - r.values[i]) / top;
      if (d > worst) worst = d, worst_name = name;
      if (d > 1e-3 && bad++ < 3) {
        ADD_FAILURE() << name << " column " << i << ": " << g.values[i] << ", llama-imatrix " << r.values[i]
                      << " (largest " << top << ")";
      }
    }
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << r.values.size() << " columns beyond 1e-3 of the largest";
  }
  std::printf("largest difference: %.3g of the tensor's largest value (%s)\n", worst, worst_name.c_str());
}

// --- random models ---

// A llama model of the default random shape (n_embd 64, 2 layers, 4 heads, 2 KV heads, n_ff 192, f32 weights).
mkmodel::RandomModelOptions Shape(int n_layer = 2) {
  mkmodel::RandomModelOptions o;
  o.n_layer = n_layer;
  o.seed = 7;
  return o;
}

std::vector<int32_t> RandomTokens(size_t n, int n_vocab, uint32_t seed = 3) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, n_vocab - 1);  // no <unk>/<s>/</s>
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

constexpr int kCtx = 32;

class CalibrateRandom : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing_util::RandomModel(Shape());
    ASSERT_FALSE(path_.empty());
    l_ = Load(path_, kCtx, kCtx);
    ASSERT_NE(l_.ctx, nullptr);
  }
  const Model& model() const { return *l_.model; }
  Context& ctx() { return *l_.ctx; }
  int n_vocab() const { return model().config().n_vocab; }

  std::string path_;
  Loaded l_;
};

// blk.0's q/k/v multiply RMSNorm(embedding) * attn_norm: their mean squares follow from the file's token embedding
// rows (f32, row = token id) alone, with every chunk's first token replaced by BOS.
TEST_F(CalibrateRandom, AttentionInputMatchesIndependentComputation) {
  const int n_chunks = 3;
  std::vector<int32_t> tokens = RandomTokens(static_cast<size_t>(n_chunks * kCtx + 5), n_vocab());
  auto m = Calibrate(ctx(), tokens, {});
  ASSERT_TRUE(m.ok()) << m.status().message();

  auto g = GgufFile::Open(path_);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const GgufTensorInfo* embd = g->FindTensor("token_embd.weight");
  const GgufTensorInfo* norm = g->FindTensor("blk.0.attn_norm.weight");
  ASSERT_NE(embd, nullptr);
  ASSERT_NE(norm, nullptr);
  ASSERT_EQ(embd->type, DType::kF32);
  ASSERT_EQ(norm->type, DType::kF32);
  const int64_t E = embd->ne[0];
  ASSERT_EQ(embd->ne[1], n_vocab());
  auto eps = g->GetFloat("llama.attention.layer_norm_rms_epsilon");
  ASSERT_TRUE(eps.ok()) << eps.status().message();
  const Tokenizer& tok = model().tokenizer();
  EXPECT_TRUE(tok.add_bos());  // so that the BOS replacement is covered
  std::vector<float> w(static_cast<size_t>(E)), x(static_cast<size_t>(E));
  std::memcpy(w.data(), norm->data, w.size() * 4);

  std::vector<double> sums(static_cast<size_t>(E), 0.0);
  for (int c = 0; c < n_chunks; ++c) {
    for (int t = 0; t < kCtx; ++t) {
      int32_t id = tokens[static_cast<size_t>(c * kCtx + t)];
      if (t == 0 && tok.add_bos()) id = tok.bos();
      std::memcpy(x.data(), embd->data + static_cast<size_t>(id) * static_cast<size_t>(E) * 4, x.size() * 4);
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(E) + eps.value());
      for (int64_t j = 0; j < E; ++j) {
        const double h = x[static_cast<size_t>(j)] * inv * w[static_cast<size_t>(j)];
        sums[static_cast<size_t>(j)] += h * h;
      }
    }
  }
  const ImatrixEntry& q = m->entries.at("blk.0.attn_q.weight");
  ASSERT_EQ(q.n_values, E);
  ASSERT_EQ(q.values.size(), static_cast<size_t>(E));
  EXPECT_EQ(q.ncall, n_chunks);
  double top = 0;
  for (double s : sums) top = std::max(top, s / (n_chunks * kCtx));
  for (int64_t j = 0; j < E; ++j) {
    const double want = sums[static_cast<size_t>(j)] / (n_chunks * kCtx);
    EXPECT_NEAR(q.values[static_cast<size_t>(j)], want, 1e-5 * top) << "column " << j;
  }

  // In the file, the values are stored times the calls (llama-imatrix's save_imatrix).
  testing_util::TempDir dir;
  const std::string out = dir.file("attn.imatrix");
  ASSERT_TRUE(quantize::WriteImatrix(out, m.value()).ok());
  std::ifstream f(out, std::ios::binary);
  const std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Entries are written by name: blk.0.attn_k.weight comes first, and k's input is q's.
  const std::string first = "blk.0.attn_k.weight";
  ASSERT_GT(b.size(), 4 + 4 + first.size() + 8 + 4 * static_cast<size_t>(E));
  ASSERT_EQ(std::string(reinterpret_cast<const char*>(b.data()) + 8, first.size()), first);
  for (int64_t j = 0; j < E; ++j) {
    float stored = 0;
    std::memcpy(&stored, b.data() + 8 + first.size() + 8 + 4 * static_cast<size_t>(j), 4);
    const double want = sums[static_cast<size_t>(j)] / (n_chunks * kCtx) * n_chunks;
    EXPECT_NEAR(stored, want, 1e-5 * top * n_chunks) << "stored column " << j;
  }
}

TEST_F(CalibrateRandom, EntriesAndCounts) {
  const int n_chunks = 4;
  auto m = Calibrate(ctx(), RandomTokens(static_cast<size_t>(n_chunks * kCtx), n_vocab()), {0, "text.txt"});
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelConfig& c = model().config();
  EXPECT_EQ(m->chunk_count, n_chunks);
  EXPECT_EQ(m->chunk_size, kCtx);
  EXPECT_EQ(m->dataset, "text.txt");
  ASSERT_EQ(m->entries.size(), static_cast<size_t>(7 * c.n_layer));  // no output projection, no norms
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* t : kProducts) {
      const std::string name = p + t + ".weight";
      auto it = m->entries.find(name);
      ASSERT_NE(it, m->entries.end()) << name;
      const ImatrixEntry& e = it->second;
      EXPECT_EQ(e.ncall, n_chunks) << name;
      EXPECT_EQ(e.n_mat, 1) << name;
      const int64_t n_in = std::string(t) == "ffn_down"      ? c.n_ff
                           : std::string(t) == "attn_output" ? c.q_dim()
                                                             : c.n_embd;
      EXPECT_EQ(e.n_values, n_in) << name;
      ASSERT_EQ(e.values.size(), static_cast<size_t>(n_in)) << name;
      for (float v : e.values) ASSERT_TRUE(std::isfinite(v) && v >= 0) << name << ": " << v;
      EXPECT_GT(*std::max_element(e.values.begin(), e.values.end()), 0) << name;
    }
    // One input, three products.
    EXPECT_EQ(m->entries.at(p + "attn_q.weight").values, m->entries.at(p + "attn_k.weight").values) << p;
    EXPECT_EQ(m->entries.at(p + "attn_q.weight").values, m->entries.at(p + "attn_v.weight").values) << p;
    EXPECT_EQ(m->entries.at(p + "ffn_gate.weight").values, m->entries.at(p + "ffn_up.weight").values) << p;
  }
}

TEST_F(CalibrateRandom, OneLayerHasSevenEntries) {
  const std::string path = testing_util::RandomModel(Shape(1));
  Loaded l = Load(path, 16, 16);
  ASSERT_NE(l.ctx, nullptr);
  auto m = Calibrate(*l.ctx, RandomTokens(40, n_vocab()), {});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->entries.size(), 7u);
  EXPECT_EQ(m->chunk_count, 2);  // 40 tokens: two chunks of 16, 8 dropped
}

// Whole chunks only, at most max_chunks of them: the result is that of the text cut to those chunks.
TEST_F(CalibrateRandom, ChunkingAndMaxChunks) {
  const std::vector<int32_t> tokens = RandomTokens(static_cast<size_t>(5 * kCtx + kCtx / 2), n_vocab());
  auto all = Calibrate(ctx(), tokens, {});
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->chunk_count, 5);
  auto whole = Calibrate(ctx(), std::span(tokens).first(5 * kCtx), {});
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  for (const auto& [name, e] : all->entries) EXPECT_EQ(e.values, whole->entries.at(name).values) << name;

  auto two = Calibrate(ctx(), tokens, {2, ""});
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->chunk_count, 2);
  auto first_two = Calibrate(ctx(), std::span(tokens).first(2 * kCtx), {});
  ASSERT_TRUE(first_two.ok()) << first_two.status().message();
  ASSERT_EQ(two->entries.size(), all->entries.size());
  bool differs = false;
  for (const auto& [name, e] : two->entries) {
    EXPECT_EQ(e.ncall, 2) << name;
    EXPECT_EQ(e.values, first_two->entries.at(name).values) << name;
    differs = differs || e.values != all->entries.at(name).values;
  }
  EXPECT_TRUE(differs);  // the other three chunks did count in `all`

  // More than there are: every chunk.
  auto many = Calibrate(ctx(), tokens, {100, ""});
  ASSERT_TRUE(many.ok()) << many.status().message();
  EXPECT_EQ(many->chunk_count, 5);
}

// Each chunk starts from an empty cache: a chunk's statistics do not depend on the chunk before it.
TEST_F(CalibrateRandom, ChunksAreIndependent) {
  const std::vector<int32_t> a = RandomTokens(kCtx, n_vocab(), 11), b = RandomTokens(kCtx, n_vocab(), 12);
  std::vector<int32_t> ab = a, ba = b;
  ab.insert(ab.end(), b.begin(), b.end());
  ba.insert(ba.end(), a.begin(), a.end());
  auto m_ab = Calibrate(ctx(), ab, {});
  auto m_ba = Calibrate(ctx(), ba, {});
  ASSERT_TRUE(m_ab.ok() && m_ba.ok());
  for (const auto& [name, e] : m_ab->entries) {
    const std::vector<float>& o = m_ba->entries.at(name).values;
    for (size_t i = 0; i < e.values.size(); ++i) EXPECT_FLOAT_EQ(e.values[i], o[i]) << name << " #" << i;
  }
}

TEST_F(CalibrateRandom, TextShorterThanOneChunk) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{kCtx - 1}}) {
    int calls = 0;
    auto m = Calibrate(ctx(), RandomTokens(n, n_vocab()), {}, [&](int, int) { ++calls; });
    ASSERT_FALSE(m.ok()) << n;
    EXPECT_EQ(m.status().code(), ErrorCode::kInvalidArgument);
    const std::string& msg = m.status().message();
    EXPECT_NE(msg.find("has " + std::to_string(n) + " tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("one chunk of " + std::to_string(kCtx)), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most " + std::to_string(n)), std::string::npos) << msg;
    EXPECT_EQ(calls, 0);
  }
  // Exactly one chunk is enough.
  auto one = Calibrate(ctx(), RandomTokens(kCtx, n_vocab()), {});
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->chunk_count, 1);
}

TEST_F(CalibrateRandom, ProgressOncePerChunk) {
  std::vector<std::pair<int, int>> calls;
  auto m = Calibrate(ctx(), RandomTokens(3 * kCtx + 1, n_vocab()), {},
                     [&](int done, int total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(calls, (std::vector<std::pair<int, int>>{{1, 3}, {2, 3}, {3, 3}}));
  calls.clear();
  ASSERT_TRUE(Calibrate(ctx(), RandomTokens(3 * kCtx, n_vocab()), {2, ""}, [&](int d, int t) {
                calls.emplace_back(d, t);
              }).ok());
  EXPECT_EQ(calls, (std::vector<std::pair<int, int>>{{1, 2}, {2, 2}}));
}

// After Calibrate the context evaluates as a fresh one does (observer detached, cache reset); the matrix it
// returned no longer changes.
TEST_F(CalibrateRandom, ObserverDetachedAfterward) {
  const std::vector<int32_t> prompt = RandomTokens(10, n_vocab(), 5);
  Loaded fresh = Load(path_, kCtx, kCtx);
  ASSERT_NE(fresh.ctx, nullptr);
  std::vector<float> want;
  ASSERT_TRUE(fresh.ctx->Eval(prompt, true, &want).ok());

  auto m = Calibrate(ctx(), RandomTokens(2 * kCtx, n_vocab()), {});
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ImportanceMatrix before = m.value();
  EXPECT_EQ(ctx().n_past(), 0);
  std::vector<float> got;
  ASSERT_TRUE(ctx().Eval(prompt, true, &got).ok());
  EXPECT_EQ(got, want);
  ASSERT_TRUE(ctx().Eval(prompt, false, &got).ok());  // more positions: still no observer
  for (const auto& [name, e] : before.entries) EXPECT_EQ(m->entries.at(name).values, e.values) << name;

  // A context of the same model can calibrate again and gets the same matrix.
  ctx().Reset();
  auto again = Calibrate(ctx(), RandomTokens(2 * kCtx, n_vocab()), {});
  ASSERT_TRUE(again.ok()) << again.status().message();
  for (const auto& [name, e] : before.entries) EXPECT_EQ(again->entries.at(name).values, e.values) << name;
}

// A chunk evaluated in several batches (n_batch < n_ctx) sees the same activations, up to rounding.
TEST_F(CalibrateRandom, SmallerBatchesSameMatrix) {
  const std::vector<int32_t> tokens = RandomTokens(2 * kCtx, n_vocab());
  Loaded batched = Load(path_, kCtx, 8);
  ASSERT_NE(batched.ctx, nullptr);
  auto a = Calibrate(ctx(), tokens, {});
  auto b = Calibrate(*batched.ctx, tokens, {});
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& [name, e] : a->entries) {
    const std::vector<float>& o = b->entries.at(name).values;
    const float top = *std::max_element(e.values.begin(), e.values.end());
    for (size_t i = 0; i < e.values.size(); ++i) EXPECT_NEAR(e.values[i], o[i], 1e-4f * top) << name << " #" << i;
  }
}

// A token embedding row with a NaN in it (BOS's, which starts every chunk): an error naming the first product whose
// input is not finite; the observer is detached on that path too.
TEST(CalibrateErrors, NonFiniteActivationsNameTheTensor) {
  testing_util::TempDir dir;
  const std::string path = dir.file("nan.gguf");
  std::filesystem::copy_file(testing_util::RandomModel(Shape(1)), path);
  size_t at = 0;
  {
    auto g = GgufFile::Open(path);
    ASSERT_TRUE(g.ok()) << g.status().message();
    const GgufTensorInfo* embd = g->FindTensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    ASSERT_EQ(embd->type, DType::kF32);
    at = g->data_offset() + embd->offset + static_cast<size_t>(embd->ne[0]) * 4;  // row 1 (BOS), column 0
  }
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(at));
    const float nan = std::nanf("");
    f.write(reinterpret_cast<const char*>(&nan), 4);
    ASSERT_TRUE(f.good());
  }
  Loaded l = Load(path, 16, 16);
  ASSERT_NE(l.ctx, nullptr);
  ASSERT_EQ(l.model->tokenizer().bos(), 1);
  auto m = Calibrate(*l.ctx, RandomTokens(32, l.model->config().n_vocab), {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("not finite"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("'blk.0.attn_q.weight'"), std::string::npos) << m.status().message();
  std::vector<float> logits;
  EXPECT_TRUE(l.ctx->Eval(RandomTokens(4, l.model->config().n_vocab), false, &logits).ok());
}

}  // namespace
}  // namespace pocketlm
