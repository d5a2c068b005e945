// adapter_config.json parsing and writing, PEFT <-> GGUF names, and llama's RoPE row reordering.
#include "io/peft/peft_config.h"

#include <gtest/gtest.h>

#include <numeric>

#include "io/peft/lora_names.h"

namespace pocketlm {
namespace {

constexpr const char* kValid =
    R"({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj",
        "v_proj"], "bias": "none", "use_rslora": false, "use_dora": false, "modules_to_save": null,
        "rank_pattern": {}, "alpha_pattern": {}, "base_model_name_or_path": "org/model", "lora_dropout": 0.05})";

TEST(PeftConfigTest, ParsesWhatPeftWrites) {
  auto c = ParsePeftLoraConfig(kValid, "cfg");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->r, 8);
  EXPECT_EQ(c->lora_alpha, 16.0);
  EXPECT_FALSE(c->use_rslora);
  EXPECT_EQ(c->target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(c->base_model_name_or_path, "org/model");
  EXPECT_DOUBLE_EQ(c->Scale(), 2.0);
}

TEST(PeftConfigTest, RsLoraScale) {
  auto c = ParsePeftLoraConfig(R"({"peft_type": "LORA", "r": 16, "lora_alpha": 8, "use_rslora": true,
                                   "target_modules": "all-linear"})",
                               "cfg");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->use_rslora);
  EXPECT_DOUBLE_EQ(c->Scale(), 2.0);  // 8 / sqrt(16)
  EXPECT_EQ(c->target_modules, std::vector<std::string>{"all-linear"});
}

TEST(PeftConfigTest, WrittenConfigParsesBack) {
  PeftLoraConfig c;
  c.r = 4;
  c.lora_alpha = 12.5;
  c.target_modules = {"k_proj", "q_proj"};
  const std::string json = PeftLoraConfigJson(c);
  for (const char* key : {"\"peft_type\": \"LORA\"", "\"task_type\": \"CAUSAL_LM\"", "\"lora_dropout\": 0.0",
                          "\"bias\": \"none\"", "\"fan_in_fan_out\": false", "\"inference_mode\": true",
                          "\"base_model_name_or_path\": null", "\"use_rslora\": false"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " missing from\n" << json;
  }
  auto back = ParsePeftLoraConfig(json, "written");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->r, 4);
  EXPECT_EQ(back->lora_alpha, 12.5);
  EXPECT_EQ(back->target_modules, c.target_modules);
  EXPECT_TRUE(back->base_model_name_or_path.empty());
  c.lora_alpha = 16;
  c.base_model_name_or_path = "me/base";
  const std::string json2 = PeftLoraConfigJson(c);
  EXPECT_NE(json2.find("\"lora_alpha\": 16,"), std::string::npos) << json2;  // integral alpha stays an int
  EXPECT_NE(json2.find("\"base_model_name_or_path\": \"me/base\""), std::string::npos) << json2;
}

struct Rejection {
  const char* json;
  ErrorCode code;
  const char* expect;
};

TEST(PeftConfigTest, RejectsWhatCannotConvert) {
  const Rejection cases[] = {
      {R"({"peft_type": "PREFIX_TUNING", "r": 8, "lora_alpha": 16})", ErrorCode::kUnsupported,
       "peft_type PREFIX_TUNING is not supported yet"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_dora": true})", ErrorCode::kUnsupported,
       "use_dora is true; DoRA adapters"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "modules_to_save": ["lm_head"]})", ErrorCode::kUnsupported,
       "modules_to_save is not empty"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4}})", ErrorCode::kUnsupported,
       "rank_pattern is not empty"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "alpha_pattern": {"q_proj": 4}})", ErrorCode::kUnsupported,
       "alpha_pattern is not empty"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "bias": "lora_only"})", ErrorCode::kUnsupported,
       "bias is \"lora_only\""},
      {R"({"peft_type": "LORA", "r": 0, "lora_alpha": 16})", ErrorCode::kCorrupt, "r must be a positive integer"},
      {R"({"peft_type": "LORA", "r": 2.5, "lora_alpha": 16})", ErrorCode::kCorrupt, "r must be a positive integer"},
      {R"({"peft_type": "LORA", "r": 8})", ErrorCode::kCorrupt, "lora_alpha must be"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 0})", ErrorCode::kCorrupt, "lora_alpha must be"},
      {R"({"peft_type": "LORA", "r": 8, "lora_alpha": 8, "target_modules": [1]})", ErrorCode::kCorrupt,
       "target_modules holds 1"},
      {R"({"r": 8, "lora_alpha": 16})", ErrorCode::kCorrupt, "no peft_type"},
      {R"([1, 2])", ErrorCode::kCorrupt, "not a JSON object"},
      {R"({"peft_type": "LORA",)", ErrorCode::kCorrupt, "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = ParsePeftLoraConfig(c.json, "adapter_config.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), c.code) << c.json << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("'adapter_config.json'"), std::string::npos) << r.status().message();
  }
}

TEST(LoraNamesTest, MapsLikeLlamaCpp) {
  const std::pair<const char*, const char*> llama[] = {
      {"model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight"},
      {"model.layers.1.self_attn.k_proj", "blk.1.attn_k.weight"},
      {"model.layers.12.self_attn.v_proj", "blk.12.attn_v.weight"},
      {"model.layers.3.self_attn.o_proj", "blk.3.attn_output.weight"},
      {"model.layers.3.mlp.gate_proj", "blk.3.ffn_gate.weight"},
      {"model.layers.3.mlp.up_proj", "blk.3.ffn_up.weight"},
      {"model.layers.3.mlp.down_proj", "blk.3.ffn_down.weight"},
  };
  for (const char* arch : {"llama", "qwen2", "gemma2"}) {
    for (const auto& [peft, gguf] : llama) {
      auto g = PeftModuleToGgufTensor(arch, peft);
      ASSERT_TRUE(g.ok()) << g.status().message();
      EXPECT_EQ(*g, gguf);
      auto p = GgufTensorToPeftModule(arch, gguf);
      ASSERT_TRUE(p.ok()) << p.status().message();
      EXPECT_EQ(*p, peft);
    }
  }
  const std::pair<const char*, const char*> phi3[] = {
      {"model.layers.0.self_attn.qkv_proj", "blk.0.attn_qkv.weight"},
      {"model.layers.0.self_attn.o_proj", "blk.0.attn_output.weight"},
      {"model.layers.0.mlp.gate_up_proj", "blk.0.ffn_up.weight"},
      {"model.layers.0.mlp.down_proj", "blk.0.ffn_down.weight"},
  };
  for (const auto& [peft, gguf] : phi3) {
    EXPECT_EQ(PeftModuleToGgufTensor("phi3", peft).value(), gguf);
    EXPECT_EQ(GgufTensorToPeftModule("phi3", gguf).value(), peft);
  }
  // Not targets, or not of this architecture.
  EXPECT_FALSE(PeftModuleToGgufTensor("phi3", "model.layers.0.self_attn.q_proj").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "model.layers.0.self_attn.qkv_proj").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "model.embed_tokens").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "lm_head").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "model.layers.x.self_attn.q_proj").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "model.layers.01.self_attn.q_proj").ok());
  EXPECT_FALSE(PeftModuleToGgufTensor("llama", "model.layers.99999999.self_attn.q_proj").ok());
  EXPECT_FALSE(GgufTensorToPeftModule("llama", "token_embd.weight").ok());
  EXPECT_FALSE(GgufTensorToPeftModule("llama", "output.weight").ok());
  auto unknown = PeftModuleToGgufTensor("gpt2", "model.layers.0.self_attn.q_proj");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("llama, qwen2, phi3, gemma2"), std::string::npos);
}

TEST(LoraNamesTest, OnlyLlamaQkArePermuted) {
  EXPECT_EQ(RopePermutationOf("llama", "blk.0.attn_q.weight"), 'q');
  EXPECT_EQ(RopePermutationOf("llama", "blk.7.attn_k.weight"), 'k');
  EXPECT_EQ(RopePermutationOf("llama", "blk.0.attn_v.weight"), 0);
  EXPECT_EQ(RopePermutationOf("llama", "blk.0.attn_output.weight"), 0);
  for (const char* arch : {"qwen2", "phi3", "gemma2"}) {
    EXPECT_EQ(RopePermutationOf(arch, "blk.0.attn_q.weight"), 0) << arch;
    EXPECT_EQ(RopePermutationOf(arch, "blk.0.attn_k.weight"), 0) << arch;
  }
}

// llama.cpp's LlamaModel.permute, written the way its numpy expression reads rather than the way the library
// computes it: view the rows as an array [n_head][2][d/2], swap the last two axes, flatten.
std::vector<int> ReshapeSwapaxes(const std::vector<int>& rows, int n_head) {
  const int d = static_cast<int>(rows.size()) / n_head;
  const int half = d / 2;
  auto in = [&](int h, int a, int b) { return rows[static_cast<size_t>((h * 2 + a) * half + b)]; };  // [h][2][half]
  std::vector<int> out;
  for (int h = 0; h < n_head; ++h) {
    for (int b = 0; b < half; ++b) {  // swapped: output is [h][half][2]
      for (int a = 0; a < 2; ++a) out.push_back(in(h, a, b));
    }
  }
  return out;
}

TEST(LoraNamesTest, PermutationIsLlamaCppsAndInverts) {
  for (int n_head : {1, 2, 3, 4, 8}) {
    for (int d : {2, 4, 6, 16}) {
      const int n_rows = n_head * d;
      for (size_t row_bytes : {size_t{1}, size_t{3}, size_t{8}}) {
        // Each row filled with its index, so the permutation can be read back from the bytes.
        std::vector<uint8_t> hf(static_cast<size_t>(n_rows) * row_bytes);
        for (int r = 0; r < n_rows; ++r) {
          for (size_t k = 0; k < row_bytes; ++k) hf[static_cast<size_t>(r) * row_bytes + k] = static_cast<uint8_t>(r);
        }
        std::vector<uint8_t> gguf(hf.size()), back(hf.size());
        ASSERT_TRUE(PermuteRopeRows(hf.data(), gguf.data(), n_rows, row_bytes, n_head, true).ok());
        std::vector<int> ids(static_cast<size_t>(n_rows));
        std::iota(ids.begin(), ids.end(), 0);
        const std::vector<int> expect = ReshapeSwapaxes(ids, n_head);
        for (int r = 0; r < n_rows; ++r) {
          for (size_t k = 0; k < row_bytes; ++k) {
            ASSERT_EQ(gguf[static_cast<size_t>(r) * row_bytes + k], expect[static_cast<size_t>(r)])
                << "n_head " << n_head << " d " << d << " row " << r;
          }
        }
        ASSERT_TRUE(PermuteRopeRows(gguf.data(), back.data(), n_rows, row_bytes, n_head, false).ok());
        EXPECT_EQ(back, hf);
      }
    }
  }
  std::vector<uint8_t> buf(12), out(12);
  EXPECT_FALSE(PermuteRopeRows(buf.data(), out.data(), 12, 1, 5, true).ok());  // 12 rows, 5 heads
  EXPECT_FALSE(PermuteRopeRows(buf.data(), out.data(), 12, 1, 4, true).ok());  // heads of 3 rows: odd
  EXPECT_FALSE(PermuteRopeRows(buf.data(), out.data(), 12, 1, 0, true).ok());
}

}  // namespace
}  // namespace pocketlm
