#include "random_model.h"

#include <cmath>
#include <cstdio>
#include <random>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "tensor/half.h"

namespace pocketlm::mkmodel {
namespace {

// Copies every tokenizer.* key of `path` into `w`; returns the vocabulary size.
Result<int> CopyVocab(const std::string& path, GgufWriter* w) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return InvalidArgument("--vocab " + path + ": " + f.status().message());
  auto tokens = f->GetArray("tokenizer.ggml.tokens", GgufType::kString);
  if (!tokens.ok()) return InvalidArgument("--vocab " + path + ": " + tokens.status().message());
  const size_t n = tokens.value()->strings.size();
  if (n == 0 || n > (1u << 24)) {
    return InvalidArgument("--vocab " + path + ": " + std::to_string(n) + " tokens (expected 1..16M)");
  }
  for (const GgufKv& kv : f->kvs()) {
    if (kv.key.starts_with("tokenizer.")) w->Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  }
  return static_cast<int>(n);
}

// Vocabulary: <unk> <s> </s>, 256 byte-fallback tokens (ids 3..258), then "▁" + printable ASCII and a few words.
int WriteBuiltInVocab(GgufWriter* w) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.emplace_back(buf);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::string sp = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  std::vector<std::string> pieces = {sp};
  for (char c = 33; c < 127; ++c) pieces.emplace_back(1, c);
  for (const char* word : {"the", "and", "of", "to", "in", "is", "it", "on", "pocket", "model", "small", "run"}) {
    pieces.push_back(sp + word);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    tokens.push_back(pieces[i]);
    types.push_back(1);
    scores.push_back(-static_cast<float>(i));
  }
  const int n_vocab = static_cast<int>(tokens.size());
  w->SetString("tokenizer.ggml.model", "llama");
  w->SetString("tokenizer.ggml.pre", "default");  // what llama.cpp's converter writes for SentencePiece vocabularies
  w->SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  w->SetF32Array("tokenizer.ggml.scores", scores);
  w->SetI32Array("tokenizer.ggml.token_type", types);
  w->SetU32("tokenizer.ggml.bos_token_id", 1);
  w->SetU32("tokenizer.ggml.eos_token_id", 2);
  w->SetU32("tokenizer.ggml.unknown_token_id", 0);
  return n_vocab;
}

}  // namespace

Result<RandomModelSummary> WriteRandomModel(const std::string& out, const RandomModelOptions& o) {
  RandomModelSummary s;
  const int n_layer = o.n_layer, n_embd = o.n_embd;
  if (n_layer < 1 || n_embd < 16 || n_embd % 16 != 0) {
    return InvalidArgument("--embd must be a multiple of 16 (and --layers at least 1)");
  }
  s.n_head = o.n_head != 0 ? o.n_head : n_embd / 16;
  s.n_head_kv = o.n_head_kv != 0 ? o.n_head_kv : (s.n_head > 1 ? s.n_head / 2 : 1);
  s.n_ff = o.n_ff != 0 ? o.n_ff : (n_embd * 8 / 3 + 63) / 64 * 64;  // rows fit every quant block size
  const int n_head = s.n_head, n_head_kv = s.n_head_kv, n_ff = s.n_ff;
  if (n_head < 1 || n_embd % n_head != 0 || (n_embd / n_head) % 2 != 0) {
    return InvalidArgument("--heads " + std::to_string(n_head) + " must divide --embd " + std::to_string(n_embd) +
                           " into an even head size (RoPE pairs)");
  }
  if (n_head_kv < 1 || n_head % n_head_kv != 0) {
    return InvalidArgument("--kv-heads " + std::to_string(n_head_kv) + " must divide --heads " +
                           std::to_string(n_head));
  }
  if (n_ff < 1 || o.n_ctx < 1) return InvalidArgument("--ff and --ctx must be positive");
  if (o.init_std < 0 || o.init_std >= 10) return InvalidArgument("--init-std must be a number in (0, 10)");
  if (o.arch != "llama" && o.arch != "qwen2") return InvalidArgument("--arch must be llama or qwen2");
  const bool qkv_bias = o.arch == "qwen2";

  GgufWriter w;
  const std::string a = o.arch + ".";
  w.SetString("general.architecture", o.arch);
  w.SetString("general.name", o.name);
  w.SetU32(a + "context_length", static_cast<uint32_t>(o.n_ctx));
  w.SetU32(a + "embedding_length", static_cast<uint32_t>(n_embd));
  w.SetU32(a + "block_count", static_cast<uint32_t>(n_layer));
  w.SetU32(a + "feed_forward_length", static_cast<uint32_t>(n_ff));
  w.SetU32(a + "attention.head_count", static_cast<uint32_t>(n_head));
  w.SetU32(a + "attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
  w.SetF32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetF32(a + "rope.freq_base", 10000.0f);
  if (!o.vocab_path.empty()) {
    PLM_ASSIGN_OR_RETURN(s.n_vocab, CopyVocab(o.vocab_path, &w));
  } else {
    s.n_vocab = WriteBuiltInVocab(&w);
  }
  const int n_vocab = s.n_vocab;

  std::mt19937 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Status st;
  // `residual`: a projection that adds into the residual stream (GPT-2's scaled init applies to it).
  auto matrix = [&](const std::string& tensor, int n_in, int n_out, bool residual = false) {
    std::vector<float> v(static_cast<size_t>(n_in) * n_out);
    float sd = 1.0f / std::sqrt(static_cast<float>(n_in));
    if (o.init_std > 0) sd = static_cast<float>(residual ? o.init_std / std::sqrt(2.0 * n_layer) : o.init_std);
    for (auto& x : v) x = normal(rng) * sd;
    s.n_params += static_cast<int64_t>(v.size());
    if (!st.ok()) return;
    if (o.f16) {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = F32ToF16(v[i]);
      st = w.AddTensor(tensor, DType::kF16, {n_in, n_out}, h.data(), h.size() * 2);
    } else {
      st = w.AddTensor(tensor, DType::kF32, {n_in, n_out}, v.data(), v.size() * 4);
    }
  };
  auto ones = [&](const std::string& tensor, int n) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    s.n_params += n;
    if (st.ok()) st = w.AddTensor(tensor, DType::kF32, {n}, v.data(), v.size() * 4);
  };
  // Biases (qwen2's q/k/v): N(0, 0.1^2), or zero with --init-std as Hugging Face initializes Linear biases.
  auto bias = [&](const std::string& tensor, int n) {
    std::vector<float> v(static_cast<size_t>(n), 0.0f);
    if (o.init_std == 0) {
      for (auto& x : v) x = 0.1f * normal(rng);
    }
    s.n_params += n;
    if (st.ok()) st = w.AddTensor(tensor, DType::kF32, {n}, v.data(), v.size() * 4);
  };
  const int hd = n_embd / n_head;
  matrix("token_embd.weight", n_embd, n_vocab);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ones(p + "attn_norm.weight", n_embd);
    matrix(p + "attn_q.weight", n_embd, n_head * hd);
    matrix(p + "attn_k.weight", n_embd, n_head_kv * hd);
    matrix(p + "attn_v.weight", n_embd, n_head_kv * hd);
    if (qkv_bias) {
      bias(p + "attn_q.bias", n_head * hd);
      bias(p + "attn_k.bias", n_head_kv * hd);
      bias(p + "attn_v.bias", n_head_kv * hd);
    }
    matrix(p + "attn_output.weight", n_head * hd, n_embd, true);
    ones(p + "ffn_norm.weight", n_embd);
    matrix(p + "ffn_gate.weight", n_embd, n_ff);
    matrix(p + "ffn_up.weight", n_embd, n_ff);
    matrix(p + "ffn_down.weight", n_ff, n_embd, true);
  }
  ones("output_norm.weight", n_embd);
  if (o.tied) {
    // no output.weight: pocketlm and llama.cpp then project with token_embd.weight
  } else if (o.init_std > 0) {
    matrix("output.weight", n_embd, n_vocab);
  } else {
    // Output rows of the byte-fallback tokens are zero and the others larger, so sampled text is mostly printable
    // pieces rather than stray bytes (the weights are random either way). Kept f32 even with --f16.
    std::vector<float> v(static_cast<size_t>(n_embd) * n_vocab, 0.0f);
    const float sd = 3.0f / std::sqrt(static_cast<float>(n_embd));
    for (int r = 259; r < n_vocab; ++r) {
      for (int i = 0; i < n_embd; ++i) v[static_cast<size_t>(r) * n_embd + i] = normal(rng) * sd;
    }
    s.n_params += static_cast<int64_t>(v.size());
    if (st.ok()) st = w.AddTensor("output.weight", DType::kF32, {n_embd, n_vocab}, v.data(), v.size() * 4);
  }
  PLM_RETURN_IF_ERROR(st);
  PLM_RETURN_IF_ERROR(w.WriteFile(out));
  s.n_embed_params = static_cast<int64_t>(n_embd) * n_vocab * (o.tied ? 1 : 2);
  return s;
}

Result<RandomLoraSummary> WriteRandomLora(const std::string& base_path, const std::string& out,
                                          const RandomLoraOptions& o) {
  if (o.rank < 1) return InvalidArgument("--rank must be at least 1");
  PLM_ASSIGN_OR_RETURN(GgufFile base, GgufFile::Open(base_path));
  std::string arch = o.architecture;
  if (arch.empty()) {
    PLM_ASSIGN_OR_RETURN(std::string_view a, base.GetString("general.architecture"));
    arch = std::string(a);
  }
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  if (o.alpha != 0.0f) w.SetF32("adapter.lora.alpha", o.alpha);
  std::mt19937 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, o.std);
  RandomLoraSummary s;
  for (const GgufTensorInfo& t : base.tensors()) {
    // blk.<n>.<projection>.weight
    const std::string name(t.name);
    if (!name.starts_with("blk.") || !name.ends_with(".weight") || t.n_dims != 2) continue;
    const size_t dot = name.find('.', 4);
    if (dot == std::string::npos) continue;
    const std::string proj = name.substr(dot + 1, name.size() - dot - 1 - 7);
    bool wanted = o.targets.empty() ? proj.starts_with("attn_") || proj.starts_with("ffn_") : false;
    for (const std::string& target : o.targets) wanted = wanted || proj == target;
    if (!wanted) continue;
    const int64_t n_in = t.ne[0], n_out = t.ne[1], r = o.rank;
    std::vector<float> a(static_cast<size_t>(n_in * r)), b(static_cast<size_t>(r * n_out));
    for (float& x : a) x = normal(rng);
    for (float& x : b) x = normal(rng);
    PLM_RETURN_IF_ERROR(w.AddTensor(name + ".lora_a", DType::kF32, {n_in, r}, a.data(), a.size() * 4));
    PLM_RETURN_IF_ERROR(w.AddTensor(name + ".lora_b", DType::kF32, {r, n_out}, b.data(), b.size() * 4));
    ++s.n_pairs;
  }
  if (s.n_pairs == 0) return InvalidArgument("'" + base_path + "' has no tensor the adapter's targets name");
  PLM_RETURN_IF_ERROR(w.WriteFile(out));
  return s;
}

}  // namespace pocketlm::mkmodel
