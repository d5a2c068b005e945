// libFuzzer target for the importance-matrix reader (both formats: llama-imatrix's binary one, and GGUF by its magic):
// any byte string must either parse or fail with a Status; on success every entry must hold what the header promises
// (n_mat matrices of n_values finite values >= 0) and every value is read, so ASan reports any that lies outside it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "quantize/imatrix_file.h"

namespace {

volatile uint64_t g_sink;  // keeps the reads from being optimized away

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = pocketlm::quantize::ParseImatrix(std::vector<uint8_t>(data, data + size), "fuzz.imatrix");
  if (!m.ok()) {
    if (m.status().message().empty()) __builtin_trap();  // every error says what is wrong
    g_sink = g_sink + m.status().message().size();
    return 0;
  }
  if (m->entries.empty() || m->chunk_count < 0) __builtin_trap();
  uint64_t h = static_cast<uint64_t>(m->chunk_count) + static_cast<uint64_t>(m->chunk_size) + m->dataset.size();
  for (const auto& [name, e] : m->entries) {
    if (name.empty() || e.ncall < 0 || e.n_values < 1 || e.n_mat < 1) __builtin_trap();
    if (e.values.size() != static_cast<size_t>(e.n_values) * static_cast<size_t>(e.n_mat)) __builtin_trap();
    for (int64_t j = 0; j < e.n_mat; ++j) {
      const float* v = m->Find(name, j);
      if (v != e.values.data() + j * e.n_values) __builtin_trap();
      for (int64_t i = 0; i < e.n_values; ++i) {
        if (!std::isfinite(v[i]) || v[i] < 0) __builtin_trap();  // what a quantizer may weigh with
        h += static_cast<uint64_t>(v[i] > 1);
      }
    }
    if (m->Find(name, e.n_mat) != nullptr || m->Find(name, -1) != nullptr) __builtin_trap();
    h += name.size() + static_cast<uint64_t>(e.ncall);
  }
  g_sink = g_sink + h;
  return 0;
}
