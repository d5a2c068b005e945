// PEFT <-> GGUF LoRA conversion: adapters survive both round trips tensor for tensor (the golden adapters, written
// by tools/mklora.py, when ../shared/golden is there; random ones made by the test everywhere), llama's q/k
// reordering matches llama.cpp's formula (B A products, and an independent numpy check), synthetic adapters cover
// rsLoRA, Phi-3's fused modules (golden phi3-tiny only: the generator makes no phi3) and 16-bit types, and every
// refused input gets its message. Bases and adapters other than the golden ones come from test_models.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "../base/test_tmpdir.h"
#include "io/gguf/gguf_writer.h"
#include "io/peft/peft_adapter.h"
#include "io/safetensors/safetensors_writer.h"
#include "lora/adapter.h"
#include "tensor/half.h"
#include "test_models.h"

namespace pocketlm {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;

std::string GoldenDir() {
  const char* env = std::getenv("PLM_GOLDEN_DIR");
  return env != nullptr ? env : PLM_DEFAULT_GOLDEN_DIR;
}

// Opens a golden model, or skips the test when the golden directory is absent.
#define OPEN_GOLDEN_OR_SKIP(var, file)                                                           \
  const std::string var##_path = GoldenDir() + "/models/" + (file);                              \
  if (!fs::exists(var##_path)) GTEST_SKIP() << "'" << var##_path << "' absent (PLM_GOLDEN_DIR)"; \
  auto var = GgufFile::Open(var##_path);                                                         \
  ASSERT_TRUE(var.ok()) << var.status().message()

// Opens a model or adapter the test made (test_models.h); a path that failed to make is "" and fails here.
#define OPEN_MADE(var, path_expr)             \
  const std::string var##_path = (path_expr); \
  ASSERT_FALSE(var##_path.empty());           \
  auto var = GgufFile::Open(var##_path);      \
  ASSERT_TRUE(var.ok()) << var.status().message()

// Random bases of llama-tiny's shape in llama's and qwen2's layouts, and random adapters (rank 8 on every
// projection, alpha 16: the golden llama-tiny.lora-r8.gguf's settings; rank 4 for qwen2 as qwen2-tiny.lora-r4).
std::string LlamaBase() {
  return testing_util::RandomModel(testing_util::TinyShape("llama"));
}
std::string Qwen2Base() {
  return testing_util::RandomModel(testing_util::TinyShape("qwen2"));
}
std::string LlamaAdapter() {
  return testing_util::RandomLora(LlamaBase());
}
std::string Qwen2Adapter() {
  mkmodel::RandomLoraOptions o;
  o.rank = 4;
  return testing_util::RandomLora(Qwen2Base(), o);
}

struct Bytes {
  std::string type;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  bool operator==(const Bytes&) const = default;
};

std::map<std::string, Bytes> TensorsOf(const GgufFile& f) {
  std::map<std::string, Bytes> out;
  for (const auto& t : f.tensors()) {
    out[std::string(t.name)] = {std::string(DTypeName(t.type)), std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                                std::vector<uint8_t>(t.data, t.data + t.nbytes)};
  }
  return out;
}

std::map<std::string, Bytes> TensorsOf(const SafetensorsFile& f) {
  std::map<std::string, Bytes> out;
  for (const auto& t : f.tensors()) {
    out[t.name] = {std::string(StDTypeName(t.dtype)), t.shape, std::vector<uint8_t>(t.bytes.begin(), t.bytes.end())};
  }
  return out;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// GGUF -> PEFT directory -> GGUF file; returns the PEFT directory.
void GgufToPeftToGguf(const GgufFile& adapter, const GgufFile* base_for_peft, const GgufFile& base,
                      const std::string& peft_dir, const std::string& gguf_out) {
  auto lora = ReadGgufLora(adapter);
  ASSERT_TRUE(lora.ok()) << lora.status().message();
  ASSERT_TRUE(WritePeftAdapter(*lora, base_for_peft, peft_dir, "org/base").ok());
  auto peft = OpenPeftAdapter(peft_dir);
  ASSERT_TRUE(peft.ok()) << peft.status().message();
  auto back = PeftToLora(*peft, base);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_TRUE(WriteGgufLora(*back, gguf_out).ok());
}

void CheckRoundTrips(const GgufFile& adapter, const GgufFile& base, bool peft_with_base) {
  TempDir dir;
  const std::string peft1 = dir.file("peft1"), gguf2 = dir.file("two.gguf"), peft3 = dir.file("peft3");
  GgufToPeftToGguf(adapter, peft_with_base ? &base : nullptr, base, peft1, gguf2);
  if (::testing::Test::HasFatalFailure()) return;

  // GGUF -> PEFT -> GGUF: the same tensors, bit for bit, and the same metadata.
  auto two = GgufFile::Open(gguf2);
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(TensorsOf(*two), TensorsOf(adapter));
  EXPECT_EQ(two->GetString("general.architecture").value(), adapter.GetString("general.architecture").value());
  EXPECT_EQ(two->GetFloat("adapter.lora.alpha").value(), adapter.GetFloat("adapter.lora.alpha").value());
  EXPECT_EQ(two->GetString("general.type").value(), "adapter");
  EXPECT_EQ(two->GetString("adapter.type").value(), "lora");

  // ... and it is an adapter pocketlm's runtime accepts for this base.
  auto loaded = LoraAdapter::Load(gguf2);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE((*loaded)->CheckAgainst(base).ok());

  // PEFT -> GGUF -> PEFT: the same safetensors tensors and config.
  auto lora2 = ReadGgufLora(*two);
  ASSERT_TRUE(lora2.ok());
  ASSERT_TRUE(WritePeftAdapter(*lora2, &base, peft3, "org/base").ok());
  auto p1 = OpenPeftAdapter(peft1);
  auto p3 = OpenPeftAdapter(peft3);
  ASSERT_TRUE(p1.ok() && p3.ok());
  EXPECT_EQ(TensorsOf(p3->weights), TensorsOf(p1->weights));
  EXPECT_EQ(ReadText(peft3 + "/adapter_config.json"), ReadText(peft1 + "/adapter_config.json"));
  EXPECT_EQ(p1->config.base_model_name_or_path, "org/base");
  EXPECT_EQ(p1->config.lora_alpha, adapter.GetFloat("adapter.lora.alpha").value());
  EXPECT_EQ(dir.Entries().size(), 3u);  // no temp files left beside the outputs
}

TEST(PeftConvertTest, LlamaGoldenRoundTrips) {
  OPEN_GOLDEN_OR_SKIP(adapter, "llama-tiny.lora-r8.gguf");
  OPEN_GOLDEN_OR_SKIP(base, "llama-tiny.gguf");
  CheckRoundTrips(*adapter, *base, /*peft_with_base=*/true);
}

TEST(PeftConvertTest, Qwen2GoldenRoundTrips) {
  OPEN_GOLDEN_OR_SKIP(adapter, "qwen2-tiny.lora-r4.gguf");
  OPEN_GOLDEN_OR_SKIP(base, "qwen2-tiny.gguf");
  CheckRoundTrips(*adapter, *base, /*peft_with_base=*/false);  // qwen2 needs no head counts
}

TEST(PeftConvertTest, LlamaRoundTrips) {
  OPEN_MADE(adapter, LlamaAdapter());
  OPEN_MADE(base, LlamaBase());
  CheckRoundTrips(*adapter, *base, /*peft_with_base=*/true);
}

TEST(PeftConvertTest, Qwen2RoundTrips) {
  OPEN_MADE(adapter, Qwen2Adapter());
  OPEN_MADE(base, Qwen2Base());
  CheckRoundTrips(*adapter, *base, /*peft_with_base=*/false);
}

// Row-major (rows x cols) = (rows x k) (k x cols) in double.
std::vector<double> MatMul(const std::vector<float>& x, const std::vector<float>& y, int64_t rows, int64_t k,
                           int64_t cols) {
  std::vector<double> out(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      double s = 0;
      for (int64_t t = 0; t < k; ++t) s += double(x[size_t(i * k + t)]) * double(y[size_t(t * cols + j)]);
      out[size_t(i * cols + j)] = s;
    }
  }
  return out;
}

// llama.cpp's permute on the rows of a (rows x cols) matrix, as its numpy expression reads:
// reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols).
std::vector<double> LlamaCppPermute(const std::vector<double>& m, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t half = rows / n_head / 2;
  std::vector<double> out;
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t b = 0; b < half; ++b) {
      for (int64_t a = 0; a < 2; ++a) {
        const int64_t src_row = (h * 2 + a) * half + b;
        out.insert(out.end(), m.begin() + src_row * cols, m.begin() + (src_row + 1) * cols);
      }
    }
  }
  return out;
}

std::vector<float> F32(const StTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}
std::vector<float> F32(const GgufTensorInfo& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

TEST(PeftConvertTest, LlamaQkDeltaIsLlamaCppsPermutationOfPeftDelta) {
  OPEN_MADE(adapter, LlamaAdapter());
  OPEN_MADE(base, LlamaBase());
  TempDir dir;
  auto lora = ReadGgufLora(*adapter);
  ASSERT_TRUE(lora.ok());
  ASSERT_TRUE(WritePeftAdapter(*lora, &*base, dir.file("peft"), "").ok());
  auto peft = SafetensorsFile::Open(dir.file("peft/adapter_model.safetensors"));
  ASSERT_TRUE(peft.ok());
  const int64_t n_head = base->GetInt("llama.attention.head_count").value();
  const int64_t n_head_kv = base->GetInt("llama.attention.head_count_kv").value();
  ASSERT_NE(n_head, n_head_kv);  // GQA: q and k use different head counts
  int checked = 0;
  for (int layer = 0; layer < 2; ++layer) {
    for (auto [hf, gguf, heads] : {std::tuple{"q_proj", "attn_q", n_head}, std::tuple{"k_proj", "attn_k", n_head_kv},
                                   std::tuple{"v_proj", "attn_v", int64_t{0}}}) {
      const std::string p = "base_model.model.model.layers." + std::to_string(layer) + ".self_attn." + hf;
      const std::string g = "blk." + std::to_string(layer) + "." + gguf + ".weight";
      const StTensor* pa = peft->Find(p + ".lora_A.weight");
      const StTensor* pb = peft->Find(p + ".lora_B.weight");
      const GgufTensorInfo* ga = adapter->FindTensor(g + ".lora_a");
      const GgufTensorInfo* gb = adapter->FindTensor(g + ".lora_b");
      ASSERT_TRUE(pa && pb && ga && gb) << p;
      const int64_t r = pa->shape[0], n_in = pa->shape[1], n_out = pb->shape[0];
      const std::vector<double> peft_delta = MatMul(F32(*pb), F32(*pa), n_out, r, n_in);  // HF row order
      const std::vector<double> gguf_delta = MatMul(F32(*gb), F32(*ga), n_out, r, n_in);
      if (heads == 0) {
        EXPECT_EQ(peft_delta, gguf_delta) << p;
      } else {
        EXPECT_EQ(LlamaCppPermute(peft_delta, n_out, n_in, heads), gguf_delta) << p;
        EXPECT_NE(peft_delta, gguf_delta) << p << ": the reordering did nothing";
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
}

// The same check by tests/io/check_llama_permute.py, which reads both sides with numpy from the safetensors spec
// and applies llama.cpp's permute expression verbatim.
TEST(PeftConvertTest, LlamaPermutationAgreesWithNumpy) {
  OPEN_MADE(adapter, LlamaAdapter());
  OPEN_MADE(base, LlamaBase());
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not available";
  }
  TempDir dir;
  auto lora = ReadGgufLora(*adapter);
  ASSERT_TRUE(lora.ok());
  ASSERT_TRUE(WritePeftAdapter(*lora, &*base, dir.file("peft"), "").ok());
  SafetensorsWriter gguf_pairs;  // the GGUF tensors as they are, under their GGUF names
  for (const auto& t : adapter->tensors()) {
    ASSERT_TRUE(gguf_pairs.AddTensor(std::string(t.name), StDType::kF32, {t.ne[1], t.ne[0]}, t.data, t.nbytes).ok());
  }
  ASSERT_TRUE(gguf_pairs.WriteFile(dir.file("gguf.safetensors")).ok());
  const std::string cmd = std::string("/usr/bin/python3 '") + PLM_CHECK_LLAMA_PERMUTE_PY + "' '" +
                          dir.file("peft/adapter_model.safetensors") + "' '" + dir.file("gguf.safetensors") + "' " +
                          std::to_string(base->GetInt("llama.attention.head_count").value()) + " " +
                          std::to_string(base->GetInt("llama.attention.head_count_kv").value());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// --- synthetic PEFT adapters ---

struct StIn {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
};

// Writes a PEFT directory: adapter_config.json as given and tensors with deterministic values.
void MakePeft(const std::string& dir, const std::string& config, const std::vector<StIn>& tensors) {
  fs::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json") << config;
  SafetensorsWriter w;
  uint32_t seed = 1;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * StDTypeSize(t.dtype));
    for (int64_t i = 0; i < n; ++i) {
      seed = seed * 1664525u + 1013904223u;
      const float v = static_cast<float>(seed >> 8) / 16777216.0f - 0.5f;
      uint8_t* p = bytes.data() + static_cast<size_t>(i) * StDTypeSize(t.dtype);
      if (t.dtype == StDType::kF32) {
        std::memcpy(p, &v, 4);
      } else if (t.dtype == StDType::kF16 || t.dtype == StDType::kBF16) {
        const uint16_t h = t.dtype == StDType::kF16 ? F32ToF16(v) : F32ToBF16(v);
        std::memcpy(p, &h, 2);
      }
    }
    ASSERT_TRUE(w.AddTensor(t.name, t.dtype, t.shape, bytes.data(), bytes.size()).ok()) << t.name;
  }
  ASSERT_TRUE(w.WriteFile(dir + "/adapter_model.safetensors").ok());
}

std::string Config(int r, double alpha, const std::string& extra = "") {
  return R"({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": )" + std::to_string(r) + R"(, "lora_alpha": )" +
         std::to_string(alpha) + R"(, "target_modules": ["q_proj"], "bias": "none")" + extra + "}";
}

std::vector<StIn> Pair(const std::string& module, int64_t r, int64_t n_in, int64_t n_out, StDType a = StDType::kF32,
                       StDType b = StDType::kF32) {
  const std::string p = "base_model.model." + module;
  return {{p + ".lora_A.weight", a, {r, n_in}}, {p + ".lora_B.weight", b, {n_out, r}}};
}

template <typename... V>
std::vector<StIn> Concat(V... v) {
  std::vector<StIn> out;
  (out.insert(out.end(), v.begin(), v.end()), ...);
  return out;
}

TEST(PeftConvertTest, RsLoraAlphaBecomesAlphaTimesSqrtR) {
  OPEN_MADE(base, Qwen2Base());
  TempDir dir;
  MakePeft(dir.file("rs"), Config(4, 8, R"(, "use_rslora": true)"), Pair("model.layers.0.self_attn.q_proj", 4, 64, 64));
  auto peft = OpenPeftAdapter(dir.file("rs"));
  ASSERT_TRUE(peft.ok()) << peft.status().message();
  auto lora = PeftToLora(*peft, *base);
  ASSERT_TRUE(lora.ok()) << lora.status().message();
  EXPECT_FLOAT_EQ(lora->alpha, 16.0f);  // 8 * sqrt(4): llama.cpp's alpha / r = 4 = PEFT's 8 / sqrt(4)
  // Back to PEFT: plain alpha, use_rslora false, the same scale.
  ASSERT_TRUE(WritePeftAdapter(*lora, &*base, dir.file("plain"), "").ok());
  auto plain = OpenPeftAdapter(dir.file("plain"));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->config.use_rslora);
  EXPECT_EQ(plain->config.lora_alpha, 16.0);
  EXPECT_DOUBLE_EQ(plain->config.Scale(), peft->config.Scale());
}

TEST(PeftConvertTest, Phi3FusedModules) {
  OPEN_GOLDEN_OR_SKIP(base, "phi3-tiny.gguf");
  TempDir dir;
  MakePeft(
      dir.file("phi3"), Config(2, 4),
      Concat(Pair("model.layers.0.self_attn.qkv_proj", 2, 64, 192), Pair("model.layers.0.self_attn.o_proj", 2, 64, 64),
             Pair("model.layers.1.mlp.gate_up_proj", 2, 64, 320), Pair("model.layers.1.mlp.down_proj", 2, 160, 64)));
  auto peft = OpenPeftAdapter(dir.file("phi3"));
  ASSERT_TRUE(peft.ok()) << peft.status().message();
  auto lora = PeftToLora(*peft, *base);
  ASSERT_TRUE(lora.ok()) << lora.status().message();
  std::vector<std::string> targets;
  for (const auto& p : lora->pairs) targets.push_back(p.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"blk.0.attn_qkv.weight", "blk.0.attn_output.weight",
                                               "blk.1.ffn_up.weight", "blk.1.ffn_down.weight"}));
  ASSERT_TRUE(WriteGgufLora(*lora, dir.file("phi3.gguf")).ok());
  auto loaded = LoraAdapter::Load(dir.file("phi3.gguf"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE((*loaded)->CheckAgainst(*base).ok());
  // Back: the fused names again, the same bytes.
  auto g = GgufFile::Open(dir.file("phi3.gguf"));
  auto again = ReadGgufLora(*g);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(WritePeftAdapter(*again, nullptr, dir.file("phi3-back"), "").ok());
  auto back = OpenPeftAdapter(dir.file("phi3-back"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(TensorsOf(back->weights), TensorsOf(peft->weights));
  EXPECT_EQ(back->config.target_modules, (std::vector<std::string>{"down_proj", "gate_up_proj", "o_proj", "qkv_proj"}));
}

TEST(PeftConvertTest, SixteenBitTypesAreKept) {
  OPEN_MADE(base, LlamaBase());
  TempDir dir;
  MakePeft(dir.file("h"), Config(4, 4),
           Concat(Pair("model.layers.0.self_attn.q_proj", 4, 64, 64, StDType::kBF16, StDType::kF16),
                  Pair("model.layers.1.self_attn.k_proj", 4, 64, 32, StDType::kF16, StDType::kBF16)));
  auto peft = OpenPeftAdapter(dir.file("h"));
  ASSERT_TRUE(peft.ok()) << peft.status().message();
  auto lora = PeftToLora(*peft, *base);
  ASSERT_TRUE(lora.ok()) << lora.status().message();
  ASSERT_TRUE(WriteGgufLora(*lora, dir.file("h.gguf")).ok());
  auto g = GgufFile::Open(dir.file("h.gguf"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->FindTensor("blk.0.attn_q.weight.lora_a")->type, DType::kBF16);
  EXPECT_EQ(g->FindTensor("blk.0.attn_q.weight.lora_b")->type, DType::kF16);
  EXPECT_EQ(g->FindTensor("blk.1.attn_k.weight.lora_b")->type, DType::kBF16);
  auto loaded = LoraAdapter::Load(dir.file("h.gguf"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE((*loaded)->CheckAgainst(*base).ok());
  auto again = ReadGgufLora(*g);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(WritePeftAdapter(*again, &*base, dir.file("h-back"), "").ok());
  auto back = OpenPeftAdapter(dir.file("h-back"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(TensorsOf(back->weights), TensorsOf(peft->weights));  // 16-bit rows permuted there and back
}

// --- refusals ---

std::string PeftError(const std::string& dir, const GgufFile* base) {
  auto peft = OpenPeftAdapter(dir);
  if (!peft.ok()) return peft.status().message();
  if (base == nullptr) return "";
  auto lora = PeftToLora(*peft, *base);
  return lora.ok() ? "" : lora.status().message();
}

TEST(PeftConvertTest, RefusesPeftItCannotConvert) {
  OPEN_MADE(llama, LlamaBase());
  OPEN_MADE(big, testing_util::RandomModel(testing_util::KqShape(/*f16=*/false)));
  OPEN_MADE(llama_adapter, LlamaAdapter());
  TempDir dir;
  const auto q = Pair("model.layers.0.self_attn.q_proj", 4, 64, 64);
  struct Case {
    const char* what;
    std::string config;
    std::vector<StIn> tensors;
    const GgufFile* base;
    const char* expect;
  };
  const Case cases[] = {
      {"modules_to_save", Config(4, 8, R"(, "modules_to_save": ["lm_head"])"), q, nullptr, "modules_to_save"},
      {"dora", Config(4, 8, R"(, "use_dora": true)"), q, nullptr, "DoRA"},
      {"rank_pattern", Config(4, 8, R"(, "rank_pattern": {"q_proj": 2})"), q, nullptr, "rank_pattern"},
      {"prompt tuning", R"({"peft_type": "PROMPT_TUNING"})", q, nullptr, "peft_type PROMPT_TUNING"},
      {"trained tensor", Config(4, 8),
       Concat(q, std::vector<StIn>{{"base_model.model.lm_head.weight", StDType::kF32, {8, 64}}}), nullptr,
       "not a LoRA factor"},
      {"embedding lora", Config(4, 8),
       Concat(q, std::vector<StIn>{{"base_model.model.model.embed_tokens.lora_embedding_A", StDType::kF32, {4, 8}}}),
       nullptr, "embedding LoRA"},
      {"rank differs from r", Config(8, 8), q, nullptr, "config says r = 8"},
      {"only lora_A", Config(4, 8), std::vector<StIn>{q[0]}, nullptr, "only one of lora_A / lora_B"},
      {"f64", Config(4, 8), Pair("model.layers.0.self_attn.q_proj", 4, 64, 64, StDType::kF64), nullptr,
       "unsupported dtype F64"},
      {"1-D", Config(4, 8), std::vector<StIn>{{q[0].name, StDType::kF32, {4}}, q[1]}, nullptr, "not 2-D"},
      {"unknown module", Config(4, 8), Pair("model.embed_tokens", 4, 64, 64), &*llama, "not supported yet"},
      {"layer the base lacks", Config(4, 8), Pair("model.layers.9.self_attn.q_proj", 4, 64, 64), &*llama,
       "does not have"},
      {"other model's shapes", Config(4, 8), q, &*big, "adapter made for another model"},
      {"adapter as base", Config(4, 8), q, &*llama_adapter, "-m must name the base model"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const std::string d = dir.file("case" + std::to_string(i++));
    MakePeft(d, c.config, c.tensors);
    const std::string msg = PeftError(d, c.base);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": '" << msg << "'";
  }
  // A pickle-only adapter and a missing directory.
  fs::create_directories(dir.file("bin"));
  std::ofstream(dir.file("bin/adapter_config.json")) << Config(4, 8);
  std::ofstream(dir.file("bin/adapter_model.bin")) << "pickle";
  EXPECT_NE(PeftError(dir.file("bin"), nullptr).find("adapter_model.bin"), std::string::npos);
  EXPECT_NE(PeftError(dir.file("none"), nullptr).find("not a directory"), std::string::npos);
}

std::string GgufError(const GgufFile& adapter, const GgufFile* base) {
  auto lora = ReadGgufLora(adapter);
  if (!lora.ok()) return lora.status().message();
  TempDir dir;
  Status s = WritePeftAdapter(*lora, base, dir.file("out"), "");
  return s.ok() ? "" : s.message();
}

Result<GgufFile> SyntheticAdapter(const std::string& arch, const std::vector<std::tuple<std::string, int64_t>>& pairs,
                                  DType type = DType::kF32) {
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", 8.0f);
  for (const auto& [target, rank] : pairs) {
    const size_t a_bytes = *RowBytes(type, 64) * static_cast<size_t>(rank);
    const size_t b_bytes = *RowBytes(type, static_cast<uint64_t>(rank)) * 64;
    std::vector<uint8_t> a(a_bytes), b(b_bytes);
    if (!w.AddTensor(target + ".lora_a", type, {64, rank}, a.data(), a.size()).ok()) return InvalidArgument("a");
    if (!w.AddTensor(target + ".lora_b", type, {rank, 64}, b.data(), b.size()).ok()) return InvalidArgument("b");
  }
  return GgufFile::FromBytes(w.ToBytes(), "synthetic.gguf");
}

TEST(PeftConvertTest, RefusesGgufItCannotConvert) {
  OPEN_MADE(llama_adapter, LlamaAdapter());
  OPEN_MADE(qwen_adapter, Qwen2Adapter());
  OPEN_MADE(llama, LlamaBase());
  // llama q/k need the head counts.
  EXPECT_NE(GgufError(*llama_adapter, nullptr).find("pass -m BASE.gguf"), std::string::npos);
  // Another architecture's base.
  EXPECT_NE(GgufError(*qwen_adapter, &*llama).find("architecture 'qwen2'"), std::string::npos);
  // A model is not an adapter.
  EXPECT_NE(GgufError(*llama, nullptr).find("not a LoRA factor"), std::string::npos);
  auto mixed = SyntheticAdapter("qwen2", {{"blk.0.attn_q.weight", 4}, {"blk.1.attn_q.weight", 8}});
  ASSERT_TRUE(mixed.ok());
  EXPECT_NE(GgufError(*mixed, nullptr).find("mixes ranks (4, 8)"), std::string::npos);
  auto q8 = SyntheticAdapter("qwen2", {{"blk.0.attn_q.weight", 32}}, DType::kQ8_0);
  ASSERT_TRUE(q8.ok()) << q8.status().message();
  EXPECT_NE(GgufError(*q8, nullptr).find("has type q8_0"), std::string::npos) << GgufError(*q8, nullptr);
  auto embd = SyntheticAdapter("qwen2", {{"token_embd.weight", 4}});
  ASSERT_TRUE(embd.ok());
  EXPECT_NE(GgufError(*embd, nullptr).find("no PEFT equivalent"), std::string::npos);
  auto other = SyntheticAdapter("gpt2", {{"blk.0.attn_q.weight", 4}});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(GgufError(*other, nullptr).find("does not know architecture 'gpt2'"), std::string::npos);
}

}  // namespace
}  // namespace pocketlm
