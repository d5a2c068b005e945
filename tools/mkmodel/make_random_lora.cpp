// Writes a random LoRA adapter (llama.cpp layout, f32 factors drawn from N(0, std^2)) for a base GGUF, so the
// adapter paths of the CLI and the C API can be tested in any clone. The adapter is noise: it only changes outputs.
// usage: make_random_lora BASE.gguf OUT.gguf [--rank N] [--alpha X] [--std X] [--seed N] [--targets a,b,...]
//        [--arch NAME]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "random_model.h"

using namespace pocketlm;

namespace {

constexpr const char* kUsage =
    "usage: %s BASE.gguf OUT.gguf [--rank N] [--alpha X] [--std X] [--seed N] [--targets a,b,...] [--arch NAME]\n"
    "  --rank     rank of every pair (default 8); --alpha: adapter.lora.alpha (default 16, 0: no key)\n"
    "  --std      standard deviation of the factors (default 0.1)\n"
    "  --targets  projections within a block, e.g. attn_q,attn_v,ffn_down (default: every attn_* and ffn_*)\n"
    "  --arch     general.architecture to write (default: the base's; another one makes a mismatched adapter)\n";

bool ParseNumber(const char* s, double lo, double hi, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-') {
    std::fprintf(stderr, kUsage, argv[0]);
    return 1;
  }
  mkmodel::RandomLoraOptions o;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    double v = 0;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: unknown argument '%s' (or missing value)\n", a.c_str());
      return 1;
    }
    const char* value = argv[++i];
    if (a == "--rank" || a == "--seed") {
      if (!ParseNumber(value, 1, 4096, &v) || v != static_cast<int>(v)) {
        std::fprintf(stderr, "error: %s must be an integer 1..4096\n", a.c_str());
        return 1;
      }
      if (a == "--rank") o.rank = static_cast<int>(v);
      if (a == "--seed") o.seed = static_cast<uint32_t>(v);
    } else if (a == "--alpha" || a == "--std") {
      if (!ParseNumber(value, 0, 1e6, &v)) {
        std::fprintf(stderr, "error: %s must be a number >= 0\n", a.c_str());
        return 1;
      }
      (a == "--alpha" ? o.alpha : o.std) = static_cast<float>(v);
    } else if (a == "--targets") {
      std::string list = value;
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) o.targets.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (a == "--arch") {
      o.architecture = value;
    } else {
      std::fprintf(stderr, "error: unknown argument '%s'\n", a.c_str());
      std::fprintf(stderr, kUsage, argv[0]);
      return 1;
    }
  }
  auto made = mkmodel::WriteRandomLora(argv[1], argv[2], o);
  if (!made.ok()) {
    std::fprintf(stderr, "error: %s\n", made.status().message().c_str());
    return 1;
  }
  std::printf("wrote %s: rank %d, %d pairs\n", argv[2], o.rank, made->n_pairs);
  return 0;
}
