// Preset names, llama_ftype numbers and llama.cpp's per-tensor type rules on model shapes the golden files do not
// cover (32 and 80 layers, GQA, MoE, tied embeddings, rows that do not split into 256-value blocks).
#include "quantize/presets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "quantize/quantize_model.h"

namespace pocketlm::quantize {
namespace {

ModelFacts Llama(int n_layer, int n_head, int n_head_kv) {
  ModelFacts m;
  m.arch = "llama";
  m.n_layer = n_layer;
  m.n_head = n_head;
  m.n_head_kv = n_head_kv;
  m.has_output = true;
  m.n_attention_wv = n_layer;
  return m;
}

std::string Blk(int i, const std::string& t) {
  return "blk." + std::to_string(i) + "." + t + ".weight";
}

// The type each layer's `tensor` gets, choosing the tensors in llama.cpp's order (layer by layer).
std::vector<DType> PerLayer(const char* preset, const ModelFacts& m, const std::string& tensor, int64_t ne0 = 4096) {
  TypeSelector sel(*FindPreset(preset), m, {}, false);
  std::vector<DType> out;
  for (int i = 0; i < m.n_layer; ++i) {
    auto c = sel.Choose(Blk(i, tensor), ne0);
    EXPECT_TRUE(c.ok()) << c.status().message();
    out.push_back(c.ok() ? c->type : DType::kF32);
  }
  return out;
}

DType One(const char* preset, const ModelFacts& m, const std::string& name, int64_t ne0 = 4096, bool pure = false,
          TypeOverrides ov = {}) {
  TypeSelector sel(*FindPreset(preset), m, ov, pure);
  auto c = sel.Choose(name, ne0);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? c->type : DType::kI8;
}

TEST(quantize, PresetNamesAliasesAndFileTypes) {
  ASSERT_NE(FindPreset("q4_k_m"), nullptr);
  EXPECT_EQ(FindPreset("q4_k_m"), FindPreset("Q4_K_M"));
  EXPECT_EQ(FindPreset("Q4_K"), FindPreset("Q4_K_M"));  // llama-quantize's aliases
  EXPECT_EQ(FindPreset("q3_k"), FindPreset("Q3_K_M"));
  EXPECT_EQ(FindPreset("Q5_K"), FindPreset("Q5_K_M"));
  EXPECT_EQ(FindPreset("Q4_K_X"), nullptr);
  EXPECT_EQ(FindPreset(""), nullptr);
  // llama_ftype numbers (include/llama.h), as written to general.file_type.
  const std::pair<const char*, uint32_t> kFtypes[] = {
      {"F32", 0},     {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},    {"Q5_1", 9},
      {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14}, {"Q4_K_M", 15}, {"Q5_K_S", 16},
      {"Q5_K_M", 17}, {"Q6_K", 18},   {"IQ4_NL", 25}, {"IQ4_XS", 30}, {"BF16", 32}};
  for (const auto& [name, ft] : kFtypes) {
    ASSERT_NE(FindPreset(name), nullptr) << name;
    EXPECT_EQ(static_cast<uint32_t>(FindPreset(name)->ftype), ft) << name;
    EXPECT_NE(PresetNames().find(name), std::string::npos) << name;
  }
  EXPECT_EQ(ParseDTypeName("Q6_K"), DType::kQ6_K);
  EXPECT_EQ(ParseDTypeName("q8_0"), DType::kQ8_0);
  EXPECT_EQ(ParseDTypeName("f16"), DType::kF16);
  EXPECT_FALSE(ParseDTypeName("q9_9").has_value());
}

TEST(quantize, PresetWhichTensorsAreQuantized) {
  EXPECT_TRUE(IsQuantizable("blk.0.attn_q.weight", 2));
  EXPECT_TRUE(IsQuantizable("token_embd.weight", 2));
  EXPECT_TRUE(IsQuantizable("blk.3.ffn_down_exps.weight", 3));
  EXPECT_FALSE(IsQuantizable("blk.0.attn_norm.weight", 1));
  EXPECT_FALSE(IsQuantizable("blk.0.attn_q_norm.weight", 2));
  EXPECT_FALSE(IsQuantizable("blk.0.attn_q.bias", 2));
  EXPECT_FALSE(IsQuantizable("blk.0.ffn_gate_inp.weight", 2));
  EXPECT_FALSE(IsQuantizable("rope_freqs.weight", 1));
  EXPECT_FALSE(IsQuantizable("position_embd.weight", 2));
}

TEST(quantize, PresetLlamaCppTensorOrder) {
  std::vector<std::string> names = {"blk.10.attn_q.weight", "blk.2.ffn_up.weight", "output.weight",
                                    "blk.2.attn_k.weight",  "token_embd.weight",   "output_norm.weight"};
  std::sort(names.begin(), names.end(), LlamaTensorOrder);
  const std::vector<std::string> want = {"output.weight",       "output_norm.weight",  "token_embd.weight",
                                         "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"};
  EXPECT_EQ(names, want);
}

TEST(quantize, PresetQ4KMGivesQ6KToHalfOfAttnVAndFfnDown) {
  const ModelFacts m = Llama(32, 32, 8);
  // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (const char* tensor : {"attn_v", "ffn_down"}) {
    const auto types = PerLayer("Q4_K_M", m, tensor);
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(types[i], more.count(i) ? DType::kQ6_K : DType::kQ4_K) << tensor << " layer " << i;
    }
  }
  EXPECT_EQ(PerLayer("Q4_K_M", m, "attn_q")[5], DType::kQ4_K);
  EXPECT_EQ(One("Q4_K_M", m, "output.weight"), DType::kQ6_K);
  EXPECT_EQ(One("Q4_K_M", m, "token_embd.weight"), DType::kQ4_K);
  EXPECT_EQ(One("Q8_0", m, "output.weight"), DType::kQ8_0);
}

TEST(quantize, PresetLowBitPresetsProtectSensitiveTensors) {
  const ModelFacts m = Llama(32, 32, 8);  // GQA 4
  EXPECT_EQ(PerLayer("Q2_K", m, "attn_v")[7], DType::kQ4_K);
  EXPECT_EQ(PerLayer("Q2_K", m, "ffn_down")[7], DType::kQ3_K);
  EXPECT_EQ(PerLayer("Q2_K", m, "attn_output")[7], DType::kQ3_K);
  EXPECT_EQ(PerLayer("Q2_K", m, "ffn_up")[7], DType::kQ2_K);
  const auto v = PerLayer("Q3_K_M", m, "attn_v");
  EXPECT_EQ(v[0], DType::kQ5_K);
  EXPECT_EQ(v[1], DType::kQ5_K);
  EXPECT_EQ(v[2], DType::kQ4_K);
  const auto down = PerLayer("Q3_K_M", m, "ffn_down");  // i < 32/16 -> Q5_K, else Q4_K (not Falcon)
  EXPECT_EQ(down[1], DType::kQ5_K);
  EXPECT_EQ(down[2], DType::kQ4_K);
  EXPECT_EQ(PerLayer("Q3_K_S", m, "attn_v")[0], DType::kQ3_K);
  EXPECT_EQ(PerLayer("Q3_K_L", m, "attn_output")[3], DType::kQ5_K);
  EXPECT_EQ(PerLayer("Q4_K_S", m, "attn_v")[3], DType::kQ5_K);
  EXPECT_EQ(PerLayer("Q4_K_S", m, "attn_v")[4], DType::kQ4_K);
  const auto nl = PerLayer("IQ4_NL", m, "ffn_down");  // first eighth -> Q5_K without an importance matrix
  EXPECT_EQ(nl[3], DType::kQ5_K);
  EXPECT_EQ(nl[4], DType::kIQ4_NL);
  EXPECT_EQ(PerLayer("IQ4_XS", m, "attn_v")[9], DType::kQ5_K);  // GQA >= 4
  EXPECT_EQ(PerLayer("IQ4_XS", Llama(32, 32, 32), "attn_v")[9], DType::kIQ4_XS);
}

TEST(quantize, PresetSeventyBAndMoeRules) {
  ModelFacts big = Llama(80, 64, 8);
  big.is_70b = true;
  EXPECT_EQ(PerLayer("Q4_K_M", big, "attn_v")[40], DType::kQ5_K);  // not a more-bits layer, still Q5_K
  ModelFacts moe = Llama(4, 32, 8);
  moe.n_expert = 8;
  EXPECT_EQ(PerLayer("Q4_K_M", moe, "attn_v")[1], DType::kQ8_0);
  EXPECT_EQ(PerLayer("Q4_K_M", moe, "attn_k")[1], DType::kQ8_0);
  EXPECT_EQ(PerLayer("Q4_K_M", moe, "attn_output")[1], DType::kQ5_K);
  // MoE layers come from the name; a name without one is an error, not a guess.
  TypeSelector sel(*FindPreset("Q4_K_M"), moe, {}, false);
  EXPECT_FALSE(sel.Choose("ffn_down_exps.weight", 4096).ok());
  EXPECT_EQ(sel.Choose("blk.3.ffn_down_exps.weight", 4096)->type, DType::kQ6_K);  // use_more_bits(3, 4)
}

TEST(quantize, PresetTiedEmbeddingIsTreatedAsOutput) {
  ModelFacts m = Llama(2, 4, 2);
  m.has_output = false;
  EXPECT_EQ(One("Q4_K_M", m, "token_embd.weight"), DType::kQ6_K);
  EXPECT_EQ(One("Q8_0", m, "token_embd.weight"), DType::kQ8_0);
  TypeOverrides ov;
  ov.output = DType::kQ8_0;
  EXPECT_EQ(One("Q4_K_M", m, "token_embd.weight", 4096, false, ov), DType::kQ8_0);
  ov.token_embd = DType::kQ5_K;
  EXPECT_EQ(One("Q4_K_M", m, "token_embd.weight", 4096, false, ov), DType::kQ5_K);
}

TEST(quantize, PresetRowsThatDoNotFitTheBlockFallBackAsLlamaCpp) {
  const ModelFacts m = Llama(1, 4, 2);
  TypeSelector sel(*FindPreset("Q4_K_M"), m, {}, false);
  auto q = sel.Choose("blk.0.attn_q.weight", 320);  // Q4_K needs multiples of 256
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->type, DType::kQ5_0);
  EXPECT_TRUE(q->fallback);
  EXPECT_NE(q->note.find("320"), std::string::npos);
  auto v = sel.Choose("blk.0.attn_v.weight", 320);  // Q6_K (last layer) -> Q8_0
  EXPECT_EQ(v->type, DType::kQ8_0);
  auto odd = sel.Choose("blk.0.attn_k.weight", 100);  // Q4_K -> Q5_0 -> not a multiple of 32 either -> F16
  EXPECT_EQ(odd->type, DType::kF16);
  EXPECT_EQ(One("Q2_K", m, "blk.0.ffn_up.weight", 320), DType::kIQ4_NL);
  EXPECT_EQ(One("Q5_K_S", m, "blk.0.ffn_up.weight", 320), DType::kQ5_1);
  EXPECT_EQ(One("Q4_K_M", m, "output.weight", 320), DType::kQ8_0);  // the output rule picks Q8_0 directly
  EXPECT_EQ(One("Q4_K_M", m, "blk.0.attn_q.weight", 320, /*pure=*/true), DType::kQ5_0);

  // Legacy types have no fallback in llama.cpp: a clear error.
  TypeSelector legacy(*FindPreset("Q4_0"), m, {}, false);
  auto bad = legacy.Choose("blk.0.attn_q.weight", 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no fallback"), std::string::npos) << bad.status().message();
  // Plain float presets fit any row.
  EXPECT_EQ(One("F16", m, "blk.0.attn_q.weight", 7), DType::kF16);
}

}  // namespace
}  // namespace pocketlm::quantize
