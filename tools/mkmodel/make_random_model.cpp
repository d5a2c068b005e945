// Writes a small random-weight model (llama architecture, SentencePiece-style byte-fallback vocabulary) with
// pocketlm's own GGUF writer. It exercises the whole pipeline on any machine, without downloads: the demo and
// the tests that must run in a plain clone use it. The weights are random: the text it generates is noise.
//
// It also creates the initial model for training pocketlm's own base model from scratch (scripts/train_base.sh):
// --vocab takes the tokenizer from a vocabulary GGUF (scripts/corpus/spm_to_gguf.py), --heads / --kv-heads /
// --ff / --ctx set the shape, and --init-std X draws every matrix from N(0, X^2) as GPT-2 and Llama training
// recipes do, with the residual projections (attn_output, ffn_down) scaled by 1/sqrt(2 * layers) (GPT-2 paper,
// section 2.3) so the residual stream's variance does not grow with depth; norms start at 1.
// usage: make_random_model OUT.gguf [--seed N] [--layers N] [--embd N] [--f16] [--vocab VOCAB.gguf] [--heads N]
//        [--kv-heads N] [--ff N] [--ctx N] [--init-std X] [--tied] [--name NAME]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/gguf/gguf_writer.h"
#include "tensor/half.h"

using namespace pocketlm;

namespace {

constexpr const char* kUsage =
    "usage: %s OUT.gguf [--seed N] [--layers N] [--embd N] [--f16] [--vocab VOCAB.gguf] [--heads N] "
    "[--kv-heads N] [--ff N] [--ctx N] [--init-std X] [--tied] [--name NAME]\n"
    "  --vocab     take the tokenizer (every tokenizer.* key) from this GGUF file\n"
    "  --heads     attention heads (default: embd / 16); --kv-heads: key/value heads (default: heads / 2)\n"
    "  --ff        feed-forward width (default: 8/3 embd rounded up to 64); --ctx: context length (2048)\n"
    "  --init-std  draw matrices from N(0, X^2), residual projections scaled by 1/sqrt(2 layers), for training\n"
    "              from scratch (default: N(0, 1/fan_in), output rows of byte tokens zero)\n"
    "  --tied      no output.weight: the output projection is the token embedding\n";

bool ParseInt(const char* s, long lo, long hi, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// Copies every tokenizer.* key of `path` into `w`; returns the vocabulary size, or -1 after printing the error.
int CopyVocab(const std::string& path, GgufWriter* w) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) {
    std::fprintf(stderr, "error: --vocab %s: %s\n", path.c_str(), f.status().message().c_str());
    return -1;
  }
  auto tokens = f->GetArray("tokenizer.ggml.tokens", GgufType::kString);
  if (!tokens.ok()) {
    std::fprintf(stderr, "error: --vocab %s: %s\n", path.c_str(), tokens.status().message().c_str());
    return -1;
  }
  const size_t n = tokens.value()->strings.size();
  if (n == 0 || n > (1u << 24)) {
    std::fprintf(stderr, "error: --vocab %s: %zu tokens (expected 1..16M)\n", path.c_str(), n);
    return -1;
  }
  for (const GgufKv& kv : f->kvs()) {
    if (kv.key.starts_with("tokenizer.")) w->Set(std::string(kv.key), GgufOwnedValue::FromView(kv.value));
  }
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, kUsage, argv[0]);
    return 1;
  }
  const std::string out = argv[1];
  int seed = 1;
  int n_layer = 2, n_embd = 64;
  int n_head = 0, n_head_kv = 0, n_ff = 0, n_ctx = 2048;  // 0: derived from n_embd below
  double init_std = 0;                                    // 0: the demo's fan-in scaled init
  bool f16 = false, tied = false;
  std::string vocab_path, name = "pocketlm random demo model";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--f16") {
      f16 = true;
    } else if (a == "--tied") {
      tied = true;
    } else if (has_value &&
               (a == "--seed" || a == "--layers" || a == "--embd" || a == "--heads" || a == "--kv-heads")) {
      int v = 0;
      if (!ParseInt(argv[++i], 1, 4096, &v)) {
        std::fprintf(stderr, "error: %s must be 1..4096\n", a.c_str());
        return 1;
      }
      (a == "--seed"     ? seed
       : a == "--layers" ? n_layer
       : a == "--embd"   ? n_embd
       : a == "--heads"  ? n_head
                         : n_head_kv) = v;
    } else if (has_value && (a == "--ff" || a == "--ctx")) {
      if (!ParseInt(argv[++i], 1, 1 << 20, a == "--ff" ? &n_ff : &n_ctx)) {
        std::fprintf(stderr, "error: %s must be 1..1048576\n", a.c_str());
        return 1;
      }
    } else if (has_value && a == "--init-std") {
      char* end = nullptr;
      init_std = std::strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(init_std > 0 && init_std < 10)) {
        std::fprintf(stderr, "error: --init-std must be a number in (0, 10)\n");
        return 1;
      }
    } else if (has_value && a == "--vocab") {
      vocab_path = argv[++i];
    } else if (has_value && a == "--name") {
      name = argv[++i];
    } else {
      std::fprintf(stderr, "error: unknown argument '%s' (or missing value)\n", a.c_str());
      std::fprintf(stderr, kUsage, argv[0]);
      return 1;
    }
  }
  if (n_embd % 16 != 0) {
    std::fprintf(stderr, "error: --embd must be a multiple of 16\n");
    return 1;
  }
  if (n_head == 0) n_head = n_embd / 16;
  if (n_head_kv == 0) n_head_kv = n_head > 1 ? n_head / 2 : 1;
  if (n_ff == 0) n_ff = (n_embd * 8 / 3 + 63) / 64 * 64;  // rows fit every quant block size
  if (n_embd % n_head != 0 || (n_embd / n_head) % 2 != 0) {
    std::fprintf(stderr, "error: --heads %d must divide --embd %d into an even head size (RoPE pairs)\n", n_head,
                 n_embd);
    return 1;
  }
  if (n_head % n_head_kv != 0) {
    std::fprintf(stderr, "error: --kv-heads %d must divide --heads %d\n", n_head_kv, n_head);
    return 1;
  }

  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", name);
  w.SetU32("llama.context_length", static_cast<uint32_t>(n_ctx));
  w.SetU32("llama.embedding_length", static_cast<uint32_t>(n_embd));
  w.SetU32("llama.block_count", static_cast<uint32_t>(n_layer));
  w.SetU32("llama.feed_forward_length", static_cast<uint32_t>(n_ff));
  w.SetU32("llama.attention.head_count", static_cast<uint32_t>(n_head));
  w.SetU32("llama.attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetF32("llama.rope.freq_base", 10000.0f);

  int n_vocab = 0;
  if (!vocab_path.empty()) {
    n_vocab = CopyVocab(vocab_path, &w);
    if (n_vocab < 0) return 1;
  } else {
    // Vocabulary: <unk> <s> </s>, 256 byte-fallback tokens (ids 3..258), then "▁" + printable ASCII and a few
    // words.
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
    n_vocab = static_cast<int>(tokens.size());
    w.SetString("tokenizer.ggml.model", "llama");
    w.SetStringArray("tokenizer.ggml.tokens", tokens);
    w.SetF32Array("tokenizer.ggml.scores", scores);
    w.SetI32Array("tokenizer.ggml.token_type", types);
    w.SetU32("tokenizer.ggml.bos_token_id", 1);
    w.SetU32("tokenizer.ggml.eos_token_id", 2);
    w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  }

  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Status st;
  int64_t n_params = 0;
  // `residual`: a projection that adds into the residual stream (GPT-2's scaled init applies to it).
  auto matrix = [&](const std::string& tensor, int n_in, int n_out, bool residual = false) {
    std::vector<float> v(static_cast<size_t>(n_in) * n_out);
    float sd = 1.0f / std::sqrt(static_cast<float>(n_in));
    if (init_std > 0) sd = static_cast<float>(residual ? init_std / std::sqrt(2.0 * n_layer) : init_std);
    for (auto& x : v) x = normal(rng) * sd;
    n_params += static_cast<int64_t>(v.size());
    if (!st.ok()) return;
    if (f16) {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = F32ToF16(v[i]);
      st = w.AddTensor(tensor, DType::kF16, {n_in, n_out}, h.data(), h.size() * 2);
    } else {
      st = w.AddTensor(tensor, DType::kF32, {n_in, n_out}, v.data(), v.size() * 4);
    }
  };
  auto ones = [&](const std::string& tensor, int n) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    n_params += n;
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
    matrix(p + "attn_output.weight", n_head * hd, n_embd, true);
    ones(p + "ffn_norm.weight", n_embd);
    matrix(p + "ffn_gate.weight", n_embd, n_ff);
    matrix(p + "ffn_up.weight", n_embd, n_ff);
    matrix(p + "ffn_down.weight", n_ff, n_embd, true);
  }
  ones("output_norm.weight", n_embd);
  if (tied) {
    // no output.weight: pocketlm and llama.cpp then project with token_embd.weight
  } else if (init_std > 0) {
    matrix("output.weight", n_embd, n_vocab);
  } else {
    // Output rows of the byte-fallback tokens are zero and the others larger, so sampled text is mostly printable
    // pieces rather than stray bytes (the weights are random either way).
    std::vector<float> v(static_cast<size_t>(n_embd) * n_vocab, 0.0f);
    const float sd = 3.0f / std::sqrt(static_cast<float>(n_embd));
    for (int r = 259; r < n_vocab; ++r) {
      for (int i = 0; i < n_embd; ++i) v[static_cast<size_t>(r) * n_embd + i] = normal(rng) * sd;
    }
    n_params += static_cast<int64_t>(v.size());
    if (st.ok()) st = w.AddTensor("output.weight", DType::kF32, {n_embd, n_vocab}, v.data(), v.size() * 4);
  }
  if (st.ok()) st = w.WriteFile(out);
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 1;
  }
  const int64_t n_embed_params = static_cast<int64_t>(n_embd) * n_vocab * (tied ? 1 : 2);
  std::printf("wrote %s: random llama, %d layers, n_embd %d, vocab %d\n", out.c_str(), n_layer, n_embd, n_vocab);
  std::printf(
      "parameters: %lld (%.2f M; %.2f M without the embedding and output matrices); heads %d, kv heads %d, "
      "ff %d, ctx %d\n",
      static_cast<long long>(n_params), static_cast<double>(n_params) / 1e6,
      static_cast<double>(n_params - n_embed_params) / 1e6, n_head, n_head_kv, n_ff, n_ctx);
  return 0;
}
