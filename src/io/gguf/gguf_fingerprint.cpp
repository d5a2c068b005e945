#include "io/gguf/gguf_fingerprint.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace pocketlm {

std::string ModelFingerprint(const GgufFile& f) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  constexpr uint64_t kSamples = 64, kSampleBytes = 64;
  for (const GgufTensorInfo& t : f.tensors()) {
    XXH3_64bits_update(&state, t.name.data(), t.name.size());
    const auto type = static_cast<uint32_t>(t.type);
    XXH3_64bits_update(&state, &type, sizeof(type));
    XXH3_64bits_update(&state, t.ne, sizeof(t.ne));
    if (t.nbytes <= kSamples * kSampleBytes) {
      XXH3_64bits_update(&state, t.data, t.nbytes);
      continue;
    }
    const uint64_t step = (t.nbytes - kSampleBytes) / (kSamples - 1);
    for (uint64_t i = 0; i < kSamples; ++i) XXH3_64bits_update(&state, t.data + i * step, kSampleBytes);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(&state)));
  return hex;
}

std::string ModelLineage(const GgufFile& f) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  if (const GgufValue* a = f.Find("general.architecture"); a != nullptr && a->type == GgufType::kString) {
    XXH3_64bits_update(&state, a->str.data(), a->str.size());
  }
  // In name order: quantizers may reorder the tensors (llama-quantize and pocketlm quantize do).
  std::vector<const GgufTensorInfo*> sorted;
  for (const GgufTensorInfo& t : f.tensors()) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  for (const GgufTensorInfo* t : sorted) {
    XXH3_64bits_update(&state, t->name.data(), t->name.size());
    XXH3_64bits_update(&state, t->ne, sizeof(t->ne));
    if (t->n_dims == 1 && t->type == DType::kF32) XXH3_64bits_update(&state, t->data, t->nbytes);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(&state)));
  return hex;
}

}  // namespace pocketlm
