// Models -> Hugging Face directory (export) -> GGUF (import) must give the same model: the same tokens for every
// tokenizer test string, the same vocabulary metadata, and the same logits. The golden models (llama.cpp's files,
// one per family and vocabulary type) run when ../shared/golden is there; random llama and qwen2 models made by the
// test (test_models.h) run everywhere. Also: sharded checkpoints with model.safetensors.index.json, and --dtype f16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "../base/test_tmpdir.h"
#include "convert/hf_convert.h"
#include "hf_test_util.h"
#include "io/safetensors/safetensors_writer.h"

namespace pocketlm {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;

// The golden prompt, or (without ../shared/golden) a paragraph of the same kind.
std::string Prompt() {
  const fs::path p1 = testing_util::GoldenDir() / "prompts" / "p1.txt";
  if (fs::exists(p1)) return testing_util::ReadAll(p1);
  return "Once upon a time, in a small town by the sea, there lived an old clockmaker named Tomas. Every morning "
         "he opened his shop at 7:30 and wound 128 clocks, one by one.";
}

// Strings any vocabulary must round-trip: ASCII, digits, runs of spaces and newlines, multi-byte UTF-8 (which a
// byte-fallback vocabulary spells in <0x..> tokens), special-token text; then 60 seeded mixes of such pieces.
std::vector<std::string> BuiltInStrings() {
  const std::vector<std::string> pieces = {
      "the",    " the", "  ",     "   ",  "\n",           "\n\n",    "\t",     "Hello", " world",
      "!",      "?",    ",",      "123",  " 4567",        "3.14",    "'s",     "don't", "é",
      "ü",      "€",    "日本語", "🦙", "\xE2\x96\x81", " <s>",    "</s>",   "<unk>", "<|user|>",
      "[INST]", "-",    "_",      "(",    "))",           " pocket", " model", "AbC",   "\r\n"};
  std::vector<std::string> out = {"",
                                  " ",
                                  "\n",
                                  "Hello world",
                                  " Hello world",
                                  "Hello World!",
                                  "  leading spaces",
                                  "trailing spaces  ",
                                  "tabs\tand\nnewlines\n\n",
                                  "3333333",
                                  "Ünïcödé and ASCII",
                                  "emoji 🦙🦙 and € signs",
                                  "\xE2\x96\x81 the literal metaspace"};
  std::mt19937 rng(7);
  for (int i = 0; i < 60; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    out.push_back(s);
  }
  return out;
}

// Every test string of the golden tokenizer vectors (when ../shared/golden is there), the built-in strings, the
// prompt and some special-token text.
std::vector<std::string> TestStrings() {
  std::vector<std::string> out = BuiltInStrings();
  const fs::path dir = testing_util::GoldenDir() / "tokenizers";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".inp") continue;
    const std::string inp = testing_util::ReadAll(e.path());
    const std::string sep = "\n__ggml_vocab_test__\n";
    for (size_t pos = 0; pos < inp.size();) {
      const size_t next = inp.find(sep, pos);
      out.push_back(inp.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
      if (next == std::string::npos) break;
      pos = next + sep.size();
    }
  }
  out.push_back(Prompt());
  out.push_back("<s>[INST] <|user|>\nhi<|end|>\n<|assistant|> <|endoftext|></s> <|im_start|>x<|im_end|>");
  return out;
}

void ExpectSameTokenizer(const Model& a, const Model& b) {
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre"}) {
    auto va = a.file().GetString(key), vb = b.file().GetString(key);
    ASSERT_TRUE(va.ok() && vb.ok()) << key;
    EXPECT_EQ(*va, *vb) << key;
  }
  const Tokenizer& ta = a.tokenizer();
  const Tokenizer& tb = b.tokenizer();
  ASSERT_EQ(ta.n_vocab(), tb.n_vocab());
  for (int32_t i = 0; i < ta.n_vocab(); ++i) {
    ASSERT_EQ(ta.TokenText(i), tb.TokenText(i)) << "token " << i;
    // gemma2-tiny carries Phi-3's vocabulary, padded the Phi-3 way ("[PAD<i>]" UNKNOWN); Gemma-2's converter
    // pads with UNUSED (_create_vocab_sentencepiece), so only those placeholders may differ, and only so.
    const bool pad = ta.TokenText(i).rfind("[PAD", 0) == 0 && ta.TokenAttributes(i) == kAttrUnknown &&
                     tb.TokenAttributes(i) == kAttrUnused;
    if (!pad) {
      ASSERT_EQ(ta.TokenAttributes(i), tb.TokenAttributes(i)) << "token " << i << " '" << ta.TokenText(i) << "'";
    }
  }
  EXPECT_EQ(ta.bos(), tb.bos());
  EXPECT_EQ(ta.eos(), tb.eos());
  EXPECT_EQ(ta.add_bos(), tb.add_bos());
  EXPECT_EQ(ta.add_space_prefix(), tb.add_space_prefix());
  size_t n = 0;
  for (const std::string& s : TestStrings()) {
    for (bool special : {false, true}) {
      auto ia = ta.Encode(s, special, special), ib = tb.Encode(s, special, special);
      ASSERT_TRUE(ia.ok() && ib.ok());
      EXPECT_EQ(*ia, *ib) << "string '" << s << "' parse_special " << special;
      ++n;
    }
  }
  EXPECT_GT(n, 100u);
}

void ExpectSameLogits(const Model& a, const Model& b, double limit) {
  auto tokens = a.tokenizer().Encode(Prompt(), true, true);
  ASSERT_TRUE(tokens.ok());
  const std::vector<float> la = testing_util::AllLogits(a, *tokens), lb = testing_util::AllLogits(b, *tokens);
  ASSERT_EQ(la.size(), lb.size());
  const double rel = testing_util::MaxRel(la, lb);
  EXPECT_LE(rel, limit);
  std::printf("logits: %zu values, max rel %.3g\n", la.size(), rel);
}

// "random-llama" / "random-qwen2": made by the test; otherwise a golden model's name.
class HfRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(HfRoundTrip, ExportThenImportGivesTheSameModel) {
  const std::string param = GetParam();
  fs::path src;
  if (param == "random-llama" || param == "random-qwen2") {
    src = testing_util::RandomModel(testing_util::TinyShape(param == "random-llama" ? "llama" : "qwen2"));
    ASSERT_FALSE(src.empty());
  } else {
    src = testing_util::GoldenDir() / "models" / (param + ".gguf");
    if (!fs::exists(src)) GTEST_SKIP() << src << " absent (PLM_GOLDEN_DIR)";
  }
  TempDir tmp;
  auto ex = convert::ExportHfModel(src.string(), tmp.file("hf"));
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(tmp.path() / "hf" / f)) << f;
  }
  auto im = convert::ImportHfModel({tmp.file("hf"), tmp.file("rt.gguf"), DType::kF32});
  ASSERT_TRUE(im.ok()) << im.status().message();
  auto a = Model::Load(src.string());
  auto b = Model::Load(tmp.file("rt.gguf"));
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ((*a)->file().tensors().size(), (*b)->file().tensors().size());
  ExpectSameTokenizer(**a, **b);
  // Weights are moved bit for bit (Gemma's 1 is subtracted and added back in f32), so logits agree to rounding.
  ExpectSameLogits(**a, **b, 1e-5);
}

std::string ParamName(const ::testing::TestParamInfo<const char*>& info) {
  std::string s = info.param;
  for (char& c : s) c = c == '-' ? '_' : c;
  return s;
}
INSTANTIATE_TEST_SUITE_P(Golden, HfRoundTrip, ::testing::Values("llama-tiny", "qwen2-tiny", "phi3-tiny", "gemma2-tiny"),
                         ParamName);
// phi3 (fused qkv / gate_up) and gemma2 (post-norms, the +1 of the norms) are golden-only: the generator makes llama
// and qwen2 only.
INSTANTIATE_TEST_SUITE_P(Random, HfRoundTrip, ::testing::Values("random-llama", "random-qwen2"), ParamName);

// A checkpoint split over two shards with model.safetensors.index.json imports to the same model.
TEST(HfImport, ShardedCheckpoint) {
  const fs::path src = testing_util::RandomModel(testing_util::TinyShape("llama"));
  ASSERT_FALSE(src.empty());
  TempDir tmp;
  ASSERT_TRUE(convert::ExportHfModel(src.string(), tmp.file("hf")).ok());
  auto whole = SafetensorsFile::Open((tmp.path() / "hf" / "model.safetensors").string());
  ASSERT_TRUE(whole.ok());
  SafetensorsWriter shard[2];
  nlohmann::json map = nlohmann::json::object();
  size_t i = 0;
  for (const StTensor& t : whole->tensors()) {
    const int k = (i++ % 2);
    ASSERT_TRUE(shard[k].AddTensor(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()).ok());
    map[t.name] = "model-0000" + std::to_string(k + 1) + "-of-00002.safetensors";
  }
  fs::create_directories(tmp.path() / "sharded");
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(tmp.path() / "hf" / f, tmp.path() / "sharded" / f);
  }
  for (int k = 0; k < 2; ++k) {
    const std::string name = "model-0000" + std::to_string(k + 1) + "-of-00002.safetensors";
    ASSERT_TRUE(shard[k].WriteFile((tmp.path() / "sharded" / name).string()).ok());
  }
  std::ofstream((tmp.path() / "sharded" / "model.safetensors.index.json").string())
      << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump();
  auto im = convert::ImportHfModel({tmp.file("sharded"), tmp.file("sharded.gguf"), DType::kF32});
  ASSERT_TRUE(im.ok()) << im.status().message();
  EXPECT_EQ(im->n_shards, 2u);
  auto a = Model::Load(src.string());
  auto b = Model::Load(tmp.file("sharded.gguf"));
  ASSERT_TRUE(a.ok() && b.ok());
  ExpectSameLogits(**a, **b, 1e-5);
}

// --dtype f16: 2-D weights become F16, norms stay F32, and logits stay within the README's F16 budget.
TEST(HfImport, F16Output) {
  const fs::path src = testing_util::RandomModel(testing_util::TinyShape("qwen2"));
  ASSERT_FALSE(src.empty());
  TempDir tmp;
  ASSERT_TRUE(convert::ExportHfModel(src.string(), tmp.file("hf")).ok());
  auto im = convert::ImportHfModel({tmp.file("hf"), tmp.file("f16.gguf"), DType::kF16});
  ASSERT_TRUE(im.ok()) << im.status().message();
  auto a = Model::Load(src.string());
  auto b = Model::Load(tmp.file("f16.gguf"));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& t : (*b)->file().tensors()) {
    EXPECT_EQ(t.type, t.n_dims == 2 ? DType::kF16 : DType::kF32) << t.name;
  }
  auto ft = (*b)->file().GetInt("general.file_type");
  ASSERT_TRUE(ft.ok());
  EXPECT_EQ(*ft, 1);  // LLAMA_FTYPE_MOSTLY_F16
  ExpectSameLogits(**a, **b, 0.06);
  // And back: an F16 model exports F16 safetensors and imports again unchanged.
  ASSERT_TRUE(convert::ExportHfModel(tmp.file("f16.gguf"), tmp.file("hf16")).ok());
  ASSERT_TRUE(convert::ImportHfModel({tmp.file("hf16"), tmp.file("f16b.gguf"), DType::kF16}).ok());
  auto c = Model::Load(tmp.file("f16b.gguf"));
  ASSERT_TRUE(c.ok());
  ExpectSameLogits(**b, **c, 1e-6);
}

}  // namespace
}  // namespace pocketlm
