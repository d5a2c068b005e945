// Writes a small random-weight model (llama architecture, SentencePiece-style byte-fallback vocabulary) with
// pocketlm's own GGUF writer. It exercises the whole pipeline on any machine, without downloads: the demo and
// the tests that must run in a plain clone use it. The weights are random: the text it generates is noise.
// usage: make_random_model OUT.gguf [--seed N] [--layers N] [--embd N] [--f16]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/gguf/gguf_writer.h"
#include "tensor/half.h"

using namespace pocketlm;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.gguf [--seed N] [--layers N] [--embd N] [--f16]\n", argv[0]);
    return 1;
  }
  const std::string out = argv[1];
  int seed = 1;
  int n_layer = 2, n_embd = 64;
  bool f16 = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--f16") {
      f16 = true;
    } else if (i + 1 < argc && (a == "--seed" || a == "--layers" || a == "--embd")) {
      const int v = std::atoi(argv[++i]);
      if (v <= 0 || v > 4096) {
        std::fprintf(stderr, "error: %s must be 1..4096\n", a.c_str());
        return 1;
      }
      (a == "--seed" ? seed : a == "--layers" ? n_layer : n_embd) = v;
    } else {
      std::fprintf(stderr, "error: unknown argument '%s'\n", a.c_str());
      return 1;
    }
  }
  if (n_embd % 16 != 0) {
    std::fprintf(stderr, "error: --embd must be a multiple of 16\n");
    return 1;
  }

  // Vocabulary: <unk> <s> </s>, 256 byte-fallback tokens (ids 3..258), then "▁" + printable ASCII and a few words.
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
  for (const char* w : {"the", "and", "of", "to", "in", "is", "it", "on", "pocket", "model", "small", "run"}) {
    pieces.push_back(sp + w);
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    tokens.push_back(pieces[i]);
    types.push_back(1);
    scores.push_back(-static_cast<float>(i));
  }
  const int n_vocab = static_cast<int>(tokens.size());
  const int n_head = n_embd / 16, n_head_kv = n_head > 1 ? n_head / 2 : 1,
            n_ff = (n_embd * 8 / 3 + 63) / 64 * 64;  // rows fit every quant block size

  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "pocketlm random demo model");
  w.SetU32("llama.context_length", 2048);
  w.SetU32("llama.embedding_length", static_cast<uint32_t>(n_embd));
  w.SetU32("llama.block_count", static_cast<uint32_t>(n_layer));
  w.SetU32("llama.feed_forward_length", static_cast<uint32_t>(n_ff));
  w.SetU32("llama.attention.head_count", static_cast<uint32_t>(n_head));
  w.SetU32("llama.attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetF32("llama.rope.freq_base", 10000.0f);
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);

  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Status st;
  auto matrix = [&](const std::string& name, int n_in, int n_out) {
    std::vector<float> v(static_cast<size_t>(n_in) * n_out);
    const float sd = 1.0f / std::sqrt(static_cast<float>(n_in));
    for (auto& x : v) x = normal(rng) * sd;
    if (!st.ok()) return;
    if (f16) {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = F32ToF16(v[i]);
      st = w.AddTensor(name, DType::kF16, {n_in, n_out}, h.data(), h.size() * 2);
    } else {
      st = w.AddTensor(name, DType::kF32, {n_in, n_out}, v.data(), v.size() * 4);
    }
  };
  auto ones = [&](const std::string& name, int n) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    if (st.ok()) st = w.AddTensor(name, DType::kF32, {n}, v.data(), v.size() * 4);
  };
  const int hd = n_embd / n_head;
  matrix("token_embd.weight", n_embd, n_vocab);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ones(p + "attn_norm.weight", n_embd);
    matrix(p + "attn_q.weight", n_embd, n_head * hd);
    matrix(p + "attn_k.weight", n_embd, n_head_kv * hd);
    matrix(p + "attn_v.weight", n_embd, n_head_kv * hd);
    matrix(p + "attn_output.weight", n_head * hd, n_embd);
    ones(p + "ffn_norm.weight", n_embd);
    matrix(p + "ffn_gate.weight", n_embd, n_ff);
    matrix(p + "ffn_up.weight", n_embd, n_ff);
    matrix(p + "ffn_down.weight", n_ff, n_embd);
  }
  ones("output_norm.weight", n_embd);
  // Output rows of the byte-fallback tokens are zero and the others larger, so sampled text is mostly printable
  // pieces rather than stray bytes (the weights are random either way).
  {
    std::vector<float> v(static_cast<size_t>(n_embd) * n_vocab, 0.0f);
    const float sd = 3.0f / std::sqrt(static_cast<float>(n_embd));
    for (int r = 259; r < n_vocab; ++r) {
      for (int i = 0; i < n_embd; ++i) v[static_cast<size_t>(r) * n_embd + i] = normal(rng) * sd;
    }
    if (st.ok()) st = w.AddTensor("output.weight", DType::kF32, {n_embd, n_vocab}, v.data(), v.size() * 4);
  }
  if (st.ok()) st = w.WriteFile(out);
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 1;
  }
  std::printf("wrote %s: random llama, %d layers, n_embd %d, vocab %d\n", out.c_str(), n_layer, n_embd, n_vocab);
  return 0;
}
