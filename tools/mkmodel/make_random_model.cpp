// Writes a small random-weight model (llama architecture, SentencePiece-style byte-fallback vocabulary) with
// pocketlm's own GGUF writer. It exercises the whole pipeline on any machine, without downloads: the demo and
// the tests that must run in a plain clone use it. The weights are random: the text it generates is noise.
//
// It also creates the initial model for training pocketlm's own base model from scratch (scripts/train_base.sh):
// --vocab takes the tokenizer from a vocabulary GGUF (scripts/corpus/spm_to_gguf.py), --heads / --kv-heads /
// --ff / --ctx set the shape, and --init-std X draws every matrix from N(0, X^2) as GPT-2 and Llama training
// recipes do, with the residual projections (attn_output, ffn_down) scaled by 1/sqrt(2 * layers) (GPT-2 paper,
// section 2.3) so the residual stream's variance does not grow with depth; norms start at 1.
// --arch qwen2 writes Qwen2's layout instead (llama's tensors plus q/k/v biases), for tests of that family.
// usage: make_random_model OUT.gguf [--seed N] [--layers N] [--embd N] [--f16] [--vocab VOCAB.gguf] [--heads N]
//        [--kv-heads N] [--ff N] [--ctx N] [--init-std X] [--tied] [--name NAME] [--arch llama|qwen2]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "random_model.h"

using namespace pocketlm;

namespace {

constexpr const char* kUsage =
    "usage: %s OUT.gguf [--seed N] [--layers N] [--embd N] [--f16] [--vocab VOCAB.gguf] [--heads N] "
    "[--kv-heads N] [--ff N] [--ctx N] [--init-std X] [--tied] [--name NAME] [--arch llama|qwen2]\n"
    "  --vocab     take the tokenizer (every tokenizer.* key) from this GGUF file\n"
    "  --heads     attention heads (default: embd / 16); --kv-heads: key/value heads (default: heads / 2)\n"
    "  --ff        feed-forward width (default: 8/3 embd rounded up to 64); --ctx: context length (2048)\n"
    "  --init-std  draw matrices from N(0, X^2), residual projections scaled by 1/sqrt(2 layers), for training\n"
    "              from scratch (default: N(0, 1/fan_in), output rows of byte tokens zero)\n"
    "  --tied      no output.weight: the output projection is the token embedding\n"
    "  --arch      llama (default) or qwen2 (llama's tensors plus q/k/v biases)\n";

bool ParseInt(const char* s, long lo, long hi, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, kUsage, argv[0]);
    return 1;
  }
  const std::string out = argv[1];
  mkmodel::RandomModelOptions o;
  int seed = static_cast<int>(o.seed);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--f16") {
      o.f16 = true;
    } else if (a == "--tied") {
      o.tied = true;
    } else if (has_value &&
               (a == "--seed" || a == "--layers" || a == "--embd" || a == "--heads" || a == "--kv-heads")) {
      int v = 0;
      if (!ParseInt(argv[++i], 1, 4096, &v)) {
        std::fprintf(stderr, "error: %s must be 1..4096\n", a.c_str());
        return 1;
      }
      (a == "--seed"     ? seed
       : a == "--layers" ? o.n_layer
       : a == "--embd"   ? o.n_embd
       : a == "--heads"  ? o.n_head
                         : o.n_head_kv) = v;
    } else if (has_value && (a == "--ff" || a == "--ctx")) {
      if (!ParseInt(argv[++i], 1, 1 << 20, a == "--ff" ? &o.n_ff : &o.n_ctx)) {
        std::fprintf(stderr, "error: %s must be 1..1048576\n", a.c_str());
        return 1;
      }
    } else if (has_value && a == "--init-std") {
      char* end = nullptr;
      o.init_std = std::strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(o.init_std > 0 && o.init_std < 10)) {
        std::fprintf(stderr, "error: --init-std must be a number in (0, 10)\n");
        return 1;
      }
    } else if (has_value && a == "--vocab") {
      o.vocab_path = argv[++i];
    } else if (has_value && a == "--name") {
      o.name = argv[++i];
    } else if (has_value && a == "--arch") {
      o.arch = argv[++i];
    } else {
      std::fprintf(stderr, "error: unknown argument '%s' (or missing value)\n", a.c_str());
      std::fprintf(stderr, kUsage, argv[0]);
      return 1;
    }
  }
  o.seed = static_cast<uint32_t>(seed);
  auto made = mkmodel::WriteRandomModel(out, o);
  if (!made.ok()) {
    std::fprintf(stderr, "error: %s\n", made.status().message().c_str());
    return 1;
  }
  const mkmodel::RandomModelSummary& s = made.value();
  std::printf("wrote %s: random %s, %d layers, n_embd %d, vocab %d\n", out.c_str(), o.arch.c_str(), o.n_layer, o.n_embd,
              s.n_vocab);
  std::printf(
      "parameters: %lld (%.2f M; %.2f M without the embedding and output matrices); heads %d, kv heads %d, "
      "ff %d, ctx %d\n",
      static_cast<long long>(s.n_params), static_cast<double>(s.n_params) / 1e6,
      static_cast<double>(s.n_params - s.n_embed_params) / 1e6, s.n_head, s.n_head_kv, s.n_ff, o.n_ctx);
  return 0;
}
