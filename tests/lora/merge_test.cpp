// Merging LoRA adapters into their base (src/merge/merge.h).
//  - Row arithmetic on a small file made here, in every storage type the merge writes (runs without golden data):
//    each merged row against W + sum s B A computed in double, within the rounding of its type.
//  - Merged versus unmerged logits: the merged model alone against the base with the adapters applied at run time,
//    over every position of a prompt (F32: f32 rounding only; F16: f16 rounding of the weights), at scale 1 and 0.5
//    and with two adapters. On random llama models and adapters made here (tests/support/test_models.h), and on the
//    golden qwen2 model (an architecture pocketlm's generator does not make; skipped without ../shared/golden).
//  - Quantized bases: the measurement of how much of the adapters' effect survives requantization, refusal below
//    the threshold (no output file), --force, and adapters made for another model.
#include "merge/merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "../base/test_tmpdir.h"
#include "io/gguf/gguf_writer.h"
#include "model/context.h"
#include "ops/matmul.h"
#include "quantize/quantize_model.h"
#include "tensor/half.h"
#include "tensor/quant/quant.h"
#include "test_models.h"

namespace pocketlm {
namespace {

using testing_util::TempDir;
namespace fs = std::filesystem;

std::string GoldenModel(const std::string& file) {
  const char* d = std::getenv("PLM_GOLDEN_DIR");
  return d == nullptr ? std::string() : std::string(d) + "/models/" + file;
}

bool HaveGolden(std::initializer_list<const char*> files) {
  for (const char* f : files) {
    const std::string p = GoldenModel(f);
    if (p.empty() || !fs::exists(p)) return false;
  }
  return true;
}

#define REQUIRE_GOLDEN(...) \
  if (!HaveGolden({__VA_ARGS__})) GTEST_SKIP() << "golden models not found (set PLM_GOLDEN_DIR to ../shared/golden)"

// A shorter measurement text than the built-in one: these tests also run under qemu.
constexpr const char* kShortText =
    "On the first warm evening of the year the whole street seemed to be outside. Children rode their bikes in "
    "circles, two neighbours argued cheerfully about tomatoes, and somebody's radio played old songs from an open "
    "window until the light was gone.";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<LoraAdapter> LoadAdapter(const std::string& path) {
  auto r = LoraAdapter::Load(path);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

std::unique_ptr<Model> LoadModel(const std::string& path) {
  auto r = Model::Load(path);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Logits (n_tokens, n_vocab) of `model` with `adapters` applied at run time, at every position of a fixed prompt.
std::vector<float> PromptLogits(const Model& model, const std::vector<ActiveLora>& adapters) {
  auto toks = model.tokenizer().Encode("The quick brown fox jumps over the lazy dog, then runs all the way home.",
                                       /*add_special=*/true, /*parse_special=*/false);
  EXPECT_TRUE(toks.ok());
  ContextParams p;
  p.n_ctx = 128;  // the random models spell the prompt with single characters: 74 tokens
  p.n_threads = 2;
  auto ctx = Context::Create(model, p);
  EXPECT_TRUE(ctx.ok());
  EXPECT_TRUE((*ctx)->SetAdapters(adapters).ok());
  std::vector<float> logits;
  Status s = (*ctx)->Eval(toks.value(), /*all_logits=*/true, &logits);
  EXPECT_TRUE(s.ok()) << s.message();
  return logits;
}

// max |a - b| over all logits, over the standard deviation of b (the scale of the golden README's thresholds).
double MaxRelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  if (a.size() != b.size() || b.empty()) return 1e9;
  double mean = 0, var = 0, mx = 0;
  for (float v : b) mean += v;
  mean /= static_cast<double>(b.size());
  for (float v : b) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / static_cast<double>(b.size()));
  for (size_t i = 0; i < a.size(); ++i) mx = std::max(mx, std::fabs(static_cast<double>(a[i]) - b[i]));
  return mx / sd;
}

MergeOptions ShortOptions() {
  MergeOptions o;
  o.text = kShortText;
  return o;
}

// One sentence, for merges into F32/F16 bases: the measurement runs the model four times over its text, most of such
// a test's time under emulation, and the check on it (rounding keeps all but a trace of the adapters' effect) needs
// no more positions.
MergeOptions OneSentenceOptions() {
  MergeOptions o;
  o.text = "The cat sat on the mat by the door.";
  return o;
}

struct Merged {
  MergeSummary summary;
  std::unique_ptr<Model> model;
};

Merged MergeAndLoad(const std::string& base, const std::vector<ActiveLora>& adapters, const std::string& out,
                    const MergeOptions& o = ShortOptions()) {
  Merged m;
  auto r = MergeAdapters(base, adapters, out, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return m;
  m.summary = r.value();
  m.model = LoadModel(out);
  return m;
}

// Deterministic values in [-amp, amp].
float Wave(int64_t i, int64_t j, float seed, float amp) {
  return amp * std::sin(0.731f * static_cast<float>(i) + 1.37f * static_cast<float>(j) + seed);
}

// Row-major (rows, n) values stored as `type` (f32, f16, bf16 or quantized with the reference quantizer).
std::vector<uint8_t> Encode(DType type, const std::vector<float>& values, int64_t n) {
  const int64_t rows = static_cast<int64_t>(values.size()) / n;
  const uint64_t row_bytes = *RowBytes(type, static_cast<uint64_t>(n));
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(quant::QuantizeRow(type, values.data() + r * n, out.data() + r * row_bytes, n).ok());
  }
  return out;
}

// A LoRA adapter file: targets (name, n_in, n_out), factors A (r, n_in) in type_a and B (n_out, r) in type_b.
struct TargetShape {
  std::string name;
  int64_t n_in, n_out;
};
void WriteAdapter(const std::string& path, const std::vector<TargetShape>& targets, int64_t r, float alpha,
                  DType type_a, DType type_b, float seed, float amp) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  if (alpha != 0.0f) w.SetF32("adapter.lora.alpha", alpha);
  for (const TargetShape& t : targets) {
    std::vector<float> a(static_cast<size_t>(r * t.n_in)), b(static_cast<size_t>(t.n_out * r));
    for (int64_t k = 0; k < r; ++k) {
      for (int64_t j = 0; j < t.n_in; ++j) a[static_cast<size_t>(k * t.n_in + j)] = Wave(k + 3, j, seed, amp);
    }
    for (int64_t o = 0; o < t.n_out; ++o) {
      for (int64_t k = 0; k < r; ++k) b[static_cast<size_t>(o * r + k)] = Wave(o, k + 5, seed + 0.5f, amp);
    }
    const auto ab = Encode(type_a, a, t.n_in), bb = Encode(type_b, b, r);
    ASSERT_TRUE(w.AddTensor(t.name + ".lora_a", type_a, {t.n_in, r}, ab.data(), ab.size()).ok());
    ASSERT_TRUE(w.AddTensor(t.name + ".lora_b", type_b, {r, t.n_out}, bb.data(), bb.size()).ok());
  }
  ASSERT_TRUE(w.WriteFile(path).ok());
}

// ---------------------------------------------------------------------------------------------------------------
// Row arithmetic in every storage type, on a file made here.

struct BaseTensor {
  std::string name;
  DType type;
  int64_t n_in, n_out;
};
const std::vector<BaseTensor> kBaseTensors = {
    {"a.weight", DType::kF32, 64, 5},  {"b.weight", DType::kF16, 96, 3},  {"c.weight", DType::kBF16, 64, 4},
    {"d.weight", DType::kQ8_0, 64, 6}, {"e.weight", DType::kQ4_0, 96, 2}, {"f.weight", DType::kQ4_K, 256, 3},
    {"g.weight", DType::kQ8_0, 64, 3},  // targeted only at scale 0: copied
    {"h.weight", DType::kF32, 32, 2},   // not targeted
};

// W[o, j] in f32 as stored (after the type's rounding).
std::vector<float> Dequantized(const GgufTensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const uint64_t row_bytes = *RowBytes(t.type, static_cast<uint64_t>(t.ne[0]));
  for (int64_t o = 0; o < t.ne[1]; ++o) {
    EXPECT_TRUE(quant::DequantizeRow(t.type, t.data + o * row_bytes, out.data() + o * t.ne[0], t.ne[0]).ok());
  }
  return out;
}

class SyntheticMerge : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetString("general.name", "synthetic");
    w.SetU32("some.count", 7);
    w.SetF32Array("some.values", {1.5f, -2.0f});
    for (const BaseTensor& t : kBaseTensors) {
      std::vector<float> v(static_cast<size_t>(t.n_in * t.n_out));
      for (int64_t o = 0; o < t.n_out; ++o) {
        for (int64_t j = 0; j < t.n_in; ++j) v[static_cast<size_t>(o * t.n_in + j)] = Wave(o, j, 0.1f, 1.0f);
      }
      const auto bytes = Encode(t.type, v, t.n_in);
      ASSERT_TRUE(w.AddTensor(t.name, t.type, {t.n_in, t.n_out}, bytes.data(), bytes.size()).ok());
    }
    std::vector<float> norm(64, 1.0f);
    ASSERT_TRUE(w.AddTensor("norm.weight", DType::kF32, {64}, norm.data(), norm.size() * 4).ok());
    ASSERT_TRUE(w.WriteFile(dir_.file("base.gguf")).ok());
    auto f = GgufFile::Open(dir_.file("base.gguf"));
    ASSERT_TRUE(f.ok()) << f.status().message();
    base_ = std::move(f).value();
    // Adapter 1: rank 2, alpha 4 (s = 2 x scale), f32 factors, on a..f; adapter 2: rank 3, no alpha (s = scale),
    // f16 A and bf16 B, on a and d; adapter 3 on g, used at scale 0.
    std::vector<TargetShape> t1;
    for (size_t i = 0; i < 6; ++i) t1.push_back({kBaseTensors[i].name, kBaseTensors[i].n_in, kBaseTensors[i].n_out});
    WriteAdapter(dir_.file("a1.gguf"), t1, 2, 4.0f, DType::kF32, DType::kF32, 0.2f, 0.5f);
    WriteAdapter(dir_.file("a2.gguf"), {{"a.weight", 64, 5}, {"d.weight", 64, 6}}, 3, 0.0f, DType::kF16, DType::kBF16,
                 0.7f, 0.4f);
    WriteAdapter(dir_.file("a3.gguf"), {{"g.weight", 64, 3}}, 2, 0.0f, DType::kF32, DType::kF32, 0.9f, 0.5f);
    for (const char* n : {"a1.gguf", "a2.gguf", "a3.gguf"}) adapters_.push_back(LoadAdapter(dir_.file(n)));
  }

  TempDir dir_;
  GgufFile base_;
  std::vector<std::unique_ptr<LoraAdapter>> adapters_;
};

TEST_F(SyntheticMerge, MergedRowsAreTheBasePlusTheLowRankTermsInEachType) {
  const std::vector<ActiveLora> active = {
      {adapters_[0].get(), 0.75f}, {adapters_[1].get(), -0.5f}, {adapters_[2].get(), 0.0f}};
  const std::string out = dir_.file("merged.gguf");
  ASSERT_TRUE(WriteMergedModel(base_, active, out, 3).ok());
  auto mf = GgufFile::Open(out);
  ASSERT_TRUE(mf.ok()) << mf.status().message();
  const GgufFile& merged = mf.value();

  // Metadata and directory unchanged.
  ASSERT_EQ(merged.kvs().size(), base_.kvs().size());
  for (size_t i = 0; i < base_.kvs().size(); ++i) EXPECT_EQ(merged.kvs()[i].key, base_.kvs()[i].key);
  EXPECT_EQ(merged.GetString("general.name").value(), "synthetic");
  EXPECT_EQ(merged.GetInt("some.count").value(), 7);
  ASSERT_EQ(merged.tensors().size(), base_.tensors().size());

  for (size_t ti = 0; ti < base_.tensors().size(); ++ti) {
    const GgufTensorInfo& bt = base_.tensors()[ti];
    const GgufTensorInfo& mt = merged.tensors()[ti];
    SCOPED_TRACE(std::string(bt.name));
    ASSERT_EQ(mt.name, bt.name);
    ASSERT_EQ(mt.type, bt.type);
    ASSERT_EQ(mt.nbytes, bt.nbytes);
    const bool targeted = bt.name != "g.weight" && bt.name != "h.weight" && bt.name != "norm.weight";
    const bool same_bytes = std::equal(bt.data, bt.data + bt.nbytes, mt.data);
    if (!targeted) {
      EXPECT_TRUE(same_bytes) << "an untargeted (or scale-0) tensor must be copied byte for byte";
      continue;
    }
    EXPECT_FALSE(same_bytes);
    // Expected rows in double: W + sum over adapters of s * B A.
    const int64_t n_in = bt.ne[0], n_out = bt.ne[1];
    const std::vector<float> w = Dequantized(bt), got = Dequantized(mt);
    std::vector<double> want(w.begin(), w.end());
    for (const ActiveLora& a : active) {
      const auto it = a.adapter->pairs().find(bt.name);
      if (it == a.adapter->pairs().end()) continue;
      const LoraPair& p = it->second;
      const double s = a.adapter->EffectiveScale(p, a.scale);
      std::vector<float> ak(static_cast<size_t>(n_in)), bo(static_cast<size_t>(p.rank()));
      for (int64_t o = 0; o < n_out; ++o) {
        DequantizeRow(p.b, o, bo.data());
        for (int64_t k = 0; k < p.rank(); ++k) {
          DequantizeRow(p.a, k, ak.data());
          for (int64_t j = 0; j < n_in; ++j) want[static_cast<size_t>(o * n_in + j)] += s * bo[k] * ak[j];
        }
      }
    }
    // The type's own error on these values: the reference quantizer applied to the exact rows. The merge sums in
    // f32 before rounding, so a value near a rounding boundary may go the other way: compare RMS errors.
    std::vector<float> want_f(want.begin(), want.end());
    const auto requant = Encode(bt.type, want_f, n_in);
    const uint64_t row_bytes = *RowBytes(bt.type, static_cast<uint64_t>(n_in));
    double err2 = 0, budget2 = 0, delta2 = 0, err_max = 0;
    std::vector<float> rq(static_cast<size_t>(n_in));
    for (int64_t o = 0; o < n_out; ++o) {
      ASSERT_TRUE(quant::DequantizeRow(bt.type, requant.data() + o * row_bytes, rq.data(), n_in).ok());
      for (int64_t j = 0; j < n_in; ++j) {
        const size_t i = static_cast<size_t>(o * n_in + j);
        const double e = got[i] - want[i], b = rq[static_cast<size_t>(j)] - want[i], d = want[i] - w[i];
        err2 += e * e;
        budget2 += b * b;
        delta2 += d * d;
        err_max = std::max(err_max, std::fabs(e));
        // f16 / bf16: rounded to nearest, so within half a unit in the last place (2^-11 / 2^-8 relative).
        if (bt.type == DType::kF16) {
          ASSERT_LE(std::fabs(e), std::fabs(want[i]) * 0x1.002p-11 + 1e-7) << i;
        } else if (bt.type == DType::kBF16) {
          ASSERT_LE(std::fabs(e), std::fabs(want[i]) * 0x1.002p-8 + 1e-7) << i;
        }
      }
    }
    const double n = static_cast<double>(n_in * n_out);
    const double err = std::sqrt(err2 / n), budget = std::sqrt(budget2 / n), delta = std::sqrt(delta2 / n);
    EXPECT_GT(delta, 0.1) << "the low-rank terms must be large next to the types' rounding for the test to mean "
                             "something";
    EXPECT_GT(delta, 2 * budget);
    if (bt.type == DType::kF32) {
      EXPECT_LT(err_max, 1e-5);  // f32 sums of a few terms of size ~1
    } else {
      EXPECT_LE(err, budget * 1.1 + 1e-6) << "type " << DTypeName(bt.type);
    }
  }
}

TEST_F(SyntheticMerge, ErrorsLeaveNoFile) {
  const std::string out = dir_.file("merged.gguf");
  // A scale that overflows f32.
  Status s = WriteMergedModel(base_, {{adapters_[0].get(), 3e38f}}, out, 2);  // s = scale * alpha / r = inf
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("NaN or infinite"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("a.weight"), std::string::npos) << s.message();
  // Nothing to merge.
  EXPECT_EQ(WriteMergedModel(base_, {}, out, 2).code(), ErrorCode::kInvalidArgument);
  // A target stored in a type pocketlm cannot requantize.
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  std::vector<uint8_t> iq(66 * 2, 0);
  ASSERT_TRUE(w.AddTensor("a.weight", DType::kIQ2_XXS, {256, 2}, iq.data(), iq.size()).ok());
  ASSERT_TRUE(w.WriteFile(dir_.file("iq.gguf")).ok());
  WriteAdapter(dir_.file("aiq.gguf"), {{"a.weight", 256, 2}}, 2, 0.0f, DType::kF32, DType::kF32, 0.3f, 0.5f);
  auto iq_base = GgufFile::Open(dir_.file("iq.gguf"));
  ASSERT_TRUE(iq_base.ok());
  auto aiq = LoadAdapter(dir_.file("aiq.gguf"));
  s = WriteMergedModel(iq_base.value(), {{aiq.get(), 1.0f}}, out, 2);
  EXPECT_EQ(s.code(), ErrorCode::kUnsupported) << s.message();
  EXPECT_NE(s.message().find("iq2_xxs"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(out));
  for (const std::string& e : dir_.Entries()) EXPECT_EQ(e.find(".tmp-"), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------------------------
// Merged versus unmerged logits.

// A base and an adapter: golden file names, or "random" for a llama model and rank-8 adapter made here.
struct ModelPair {
  const char* base;
  const char* adapter;
};

void PrintTo(const ModelPair& p, std::ostream* os) {
  *os << p.base << " + " << p.adapter;
}

// The random llama model (llama-tiny's shape) and a rank-8 adapter on every projection (as llama-tiny.lora-r8).
std::string RandomBase() {
  return testing_util::RandomModel();
}
std::string RandomAdapter() {
  return testing_util::RandomLora(RandomBase());
}

class F32Merge : public ::testing::TestWithParam<ModelPair> {
 protected:
  void SetUp() override {
    if (std::string(GetParam().base) == "random") {
      base_path_ = RandomBase();
      adapter_path_ = RandomAdapter();
      return;
    }
    REQUIRE_GOLDEN(GetParam().base, GetParam().adapter);
    base_path_ = GoldenModel(GetParam().base);
    adapter_path_ = GoldenModel(GetParam().adapter);
  }
  std::string base_path_, adapter_path_;
};

// The merged model computes (W + s B A) x where the run-time adapter computes W x + s B (A x): the same up to f32
// rounding. The KV cache holds f16, and an f32 rounding difference now and then moves a cached key or value across
// an f16 rounding boundary (a step of 2^-11 of it), which the following layers carry into the logits: measured
// 2.6e-6 to 9.3e-5 of the logits' spread on x86 and up to 1.4e-4 on AArch64 (about 1e-6 with an f32
// cache). 1e-3 stays far below any wrong merge (kMinAdapterEffect).
constexpr double kF32Tolerance = 1e-3;
// The adapters must move the logits far more than that, or the comparison proves nothing.
constexpr double kMinAdapterEffect = 0.05;

TEST_P(F32Merge, MergedLogitsEqualTheAdapterAppliedAtRunTime) {
  TempDir dir;
  auto base = LoadModel(base_path_);
  auto ad = LoadAdapter(adapter_path_);
  ASSERT_TRUE(base && ad);
  const std::vector<float> plain = PromptLogits(*base, {});
  for (float scale : {1.0f, 0.5f}) {
    SCOPED_TRACE("scale " + std::to_string(scale));
    const std::vector<ActiveLora> active = {{ad.get(), scale}};
    const std::vector<float> ref = PromptLogits(*base, active);
    Merged m = MergeAndLoad(base_path_, active, dir.file("merged.gguf"), OneSentenceOptions());
    ASSERT_TRUE(m.model);
    EXPECT_EQ(m.summary.n_merged, ad->pairs().size());
    EXPECT_FALSE(m.summary.requantized);
    EXPECT_EQ(m.summary.merged_types, std::vector<DType>{DType::kF32});
    EXPECT_GT(m.summary.quality.kept, 0.9999);
    EXPECT_GT(m.summary.quality.kl_base, 1e-3);
    const std::vector<float> got = PromptLogits(*m.model, {});
    EXPECT_GT(MaxRelDiff(plain, ref), kMinAdapterEffect);
    const double diff = MaxRelDiff(got, ref);
    EXPECT_LT(diff, kF32Tolerance);
    std::printf("[ info ] %s + %s at %.1f: merged vs run-time max rel diff %.2e (adapter effect %.3f)\n",
                GetParam().base, GetParam().adapter, scale, diff, MaxRelDiff(plain, ref));
  }
}

INSTANTIATE_TEST_SUITE_P(SelfMade, F32Merge, ::testing::Values(ModelPair{"random", "random"}),
                         [](const auto&) { return std::string("llama"); });
// q/k/v biases and a tied output: an architecture pocketlm's generator does not make.
INSTANTIATE_TEST_SUITE_P(Golden, F32Merge, ::testing::Values(ModelPair{"qwen2-tiny.gguf", "qwen2-tiny.lora-r4.gguf"}),
                         [](const auto& p) {
                           std::string n = p.param.base;
                           return n.substr(0, n.find('-'));
                         });

TEST(Merge, TwoAdaptersMergeLikeBothAtRunTime) {
  TempDir dir;
  const std::string base_path = RandomBase();
  auto base = LoadModel(base_path);
  auto ad1 = LoadAdapter(RandomAdapter());
  ASSERT_TRUE(base && ad1);
  // A second adapter: rank 3, f16 A, bf16 B, no alpha, on attn_q of block 0 (which the first adapter also
  // targets), attn_v of block 0 and ffn_down of block 1.
  std::vector<TargetShape> targets;
  for (const char* n : {"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.1.ffn_down.weight"}) {
    const GgufTensorInfo* t = base->file().FindTensor(n);
    ASSERT_NE(t, nullptr) << n;
    targets.push_back({n, t->ne[0], t->ne[1]});
  }
  WriteAdapter(dir.file("second.gguf"), targets, 3, 0.0f, DType::kF16, DType::kBF16, 0.4f, 0.3f);
  auto ad2 = LoadAdapter(dir.file("second.gguf"));
  ASSERT_TRUE(ad2);
  const std::vector<ActiveLora> both = {{ad1.get(), 0.7f}, {ad2.get(), 1.5f}};
  const std::vector<float> ref = PromptLogits(*base, both);
  EXPECT_GT(MaxRelDiff(PromptLogits(*base, {{ad1.get(), 0.7f}}), ref), kMinAdapterEffect)
      << "the second adapter must matter";
  Merged m = MergeAndLoad(base_path, both, dir.file("merged.gguf"));
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.summary.n_merged, 14u);  // the first adapter already targets every projection
  EXPECT_LT(MaxRelDiff(PromptLogits(*m.model, {}), ref), kF32Tolerance);
}

// A random f16 model in llama-kq's shape and a rank-16 adapter on attn_q, attn_v and ffn_down (as llama-kq.lora-r16).
TEST(Merge, F16BaseWithinF16Rounding) {
  TempDir dir;
  const std::string base_path = testing_util::RandomModel(testing_util::KqShape(/*f16=*/true));
  mkmodel::RandomLoraOptions lo;
  lo.rank = 16;
  lo.alpha = 32.0f;
  lo.targets = {"attn_q", "attn_v", "ffn_down"};
  lo.std = 0.05f;
  auto base = LoadModel(base_path);
  auto ad = LoadAdapter(testing_util::RandomLora(base_path, lo));
  ASSERT_TRUE(base && ad);
  const std::vector<ActiveLora> active = {{ad.get(), 1.0f}};
  const std::vector<float> plain = PromptLogits(*base, {});
  const std::vector<float> ref = PromptLogits(*base, active);
  Merged m = MergeAndLoad(base_path, active, dir.file("merged.gguf"), OneSentenceOptions());
  ASSERT_TRUE(m.model);
  EXPECT_EQ(m.summary.merged_types, std::vector<DType>{DType::kF16});
  EXPECT_FALSE(m.summary.requantized);
  // Rounding the merged weights to f16 (relative error up to 2^-11 per weight) moves the logits by about 1e-3 of
  // their spread; the adapter itself moves them by ~100x that.
  const double effect = MaxRelDiff(plain, ref), diff = MaxRelDiff(PromptLogits(*m.model, {}), ref);
  std::printf("[ info ] random F16 (llama-kq shape): merged vs run-time max rel diff %.2e (adapter effect %.3f)\n",
              diff, effect);
  EXPECT_GT(effect, kMinAdapterEffect);
  EXPECT_LT(diff, 5e-3);
  EXPECT_GT(m.summary.quality.kept, 0.999);
  // Untargeted tensors and all metadata are copied as they are.
  const GgufFile& in = base->file();
  const GgufFile& out = m.model->file();
  ASSERT_EQ(out.kvs().size(), in.kvs().size());
  size_t copied = 0;
  for (const GgufTensorInfo& t : in.tensors()) {
    const GgufTensorInfo* o = out.FindTensor(t.name);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->type, t.type);
    if (ad->pairs().contains(t.name)) continue;
    EXPECT_TRUE(o->nbytes == t.nbytes && std::equal(t.data, t.data + t.nbytes, o->data)) << t.name;
    ++copied;
  }
  EXPECT_EQ(copied, in.tensors().size() - ad->pairs().size());
}

// ---------------------------------------------------------------------------------------------------------------
// Quantized bases: measured, and refused below the threshold.

class QuantizedMerge : public ::testing::Test {
 protected:
  void SetUp() override {
    ad_ = LoadAdapter(RandomAdapter());
    ASSERT_TRUE(ad_);
  }
  // The random llama model quantized here with pocketlm's own quantizer, every matrix in `type`.
  std::string Quantized(const std::string& type) {
    const std::string path = dir_.file("random-llama-" + type + ".gguf");
    quantize::QuantizeOptions o;
    o.preset = type;
    o.pure = true;
    auto r = quantize::QuantizeModel(RandomBase(), path, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return path;
  }
  TempDir dir_;
  std::unique_ptr<LoraAdapter> ad_;
};

TEST_F(QuantizedMerge, MeasuresWhatSurvivesRequantization) {
  double kept[2] = {0, 0};
  const char* types[2] = {"Q8_0", "Q4_0"};
  const DType dtypes[2] = {DType::kQ8_0, DType::kQ4_0};
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(types[i]);
    const std::string base = Quantized(types[i]);
    MergeOptions o = ShortOptions();  // the CLI test measures one merge on the built-in text
    o.min_kept = 0.0;
    Merged m = MergeAndLoad(base, {{ad_.get(), 1.0f}}, dir_.file(std::string("merged-") + types[i] + ".gguf"), o);
    ASSERT_TRUE(m.model);
    const MergeQuality& q = m.summary.quality;
    EXPECT_TRUE(m.summary.requantized);
    EXPECT_FALSE(m.summary.below_min_kept);
    EXPECT_EQ(m.summary.merged_types, std::vector<DType>{dtypes[i]});
    EXPECT_GE(q.kept, 0.0);
    EXPECT_LE(q.kept, 1.0);
    EXPECT_GT(q.kl_base, 1e-3);
    EXPECT_GT(q.n_positions, 40);
    EXPECT_NEAR(q.kept, 1.0 - q.kl_merged / q.kl_base, 1e-12);
    EXPECT_FALSE(q.no_effect);
    for (const auto& [name, pair] : ad_->pairs()) EXPECT_EQ(m.model->file().FindTensor(name)->type, dtypes[i]);
    kept[i] = q.kept;
    std::printf("[ info ] random llama %s + r8: KL(ref||base) %.6f, KL(ref||merged) %.6f, kept %.2f%%\n", types[i],
                q.kl_base, q.kl_merged, 100.0 * q.kept);
  }
  EXPECT_GT(kept[0], kept[1]) << "8-bit requantization must keep more of the adapter than 4-bit";
  EXPECT_LT(kept[1], 1.0);
}

TEST_F(QuantizedMerge, RefusesBelowTheThresholdUnlessForced) {
  const std::string base = Quantized("Q4_0");
  const std::string out = dir_.file("merged.gguf");
  MergeOptions o = ShortOptions();
  o.min_kept = 1.0;  // 4-bit requantization always loses something
  std::vector<MergeQuality> seen;
  auto r = MergeAdapters(base, {{ad_.get(), 1.0f}}, out, o, [&](const MergeProgress& p) {
    if (p.stage == MergeProgress::Stage::kMeasured) seen.push_back(p.summary->quality);
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find("does not survive requantization to q4_0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("F16 base"), std::string::npos) << msg;
  EXPECT_NE(msg.find("force the merge"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("--"), std::string::npos) << "library messages name no command-line flag: " << msg;
  EXPECT_EQ(seen.size(), 1u) << "the measurement is reported before the refusal";
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(dir_.Entries().size(), 1u) << "only the quantized base, no temp file";

  // A file already at the output path stays as it was.
  { std::ofstream(out) << "previous"; }
  EXPECT_FALSE(MergeAdapters(base, {{ad_.get(), 1.0f}}, out, o).ok());
  EXPECT_EQ(ReadFile(out), "previous");

  o.force = true;
  auto forced = MergeAdapters(base, {{ad_.get(), 1.0f}}, out, o);
  ASSERT_TRUE(forced.ok()) << forced.status().message();
  EXPECT_TRUE(forced->below_min_kept);
  auto model = LoadModel(out);
  EXPECT_TRUE(model);
  EXPECT_EQ(dir_.Entries().size(), 2u);
}

TEST(Merge, AdapterOfAnotherModelFailsWithoutAFile) {
  TempDir dir;
  const std::string out = dir.file("merged.gguf");
  const std::string base = RandomBase();
  mkmodel::RandomLoraOptions qwen2;
  qwen2.architecture = "qwen2";
  auto qwen = LoadAdapter(testing_util::RandomLora(base, qwen2));
  auto r = MergeAdapters(base, {{qwen.get(), 1.0f}}, out, ShortOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("made for architecture 'qwen2'"), std::string::npos) << r.status().message();
  // Same architecture, other shapes.
  auto kq = LoadAdapter(testing_util::RandomLora(testing_util::RandomModel(testing_util::KqShape(/*f16=*/false))));
  r = MergeAdapters(base, {{kq.get(), 1.0f}}, out, ShortOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("adapter made for another model"), std::string::npos) << r.status().message();
  // The base itself as the output.
  auto ad = LoadAdapter(RandomAdapter());
  r = MergeAdapters(base, {{ad.get(), 1.0f}}, base, ShortOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is the base model"), std::string::npos) << r.status().message();
  EXPECT_TRUE(dir.Entries().empty());
}

}  // namespace
}  // namespace pocketlm
