// libFuzzer target for the GGUF reader: any byte string must either parse or fail with a Status; on success
// every metadata value is read through the typed getters and every tensor's first and last data byte is
// touched, so ASan reports any view that points outside the buffer.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/gguf/gguf_reader.h"

namespace {

volatile uint64_t g_sink;  // keeps the reads from being optimized away

void Walk(const pocketlm::GgufValue& v) {
  uint64_t h = v.u ^ static_cast<uint64_t>(v.i) ^ v.count ^ v.str.size();
  if (!v.str.empty()) h += static_cast<uint8_t>(v.str.front()) + static_cast<uint8_t>(v.str.back());
  if (v.raw != nullptr && v.count > 0) {
    const uint64_t bytes = v.count * pocketlm::GgufScalarSize(v.elem_type);
    h += v.raw[0] + v.raw[bytes - 1];
  }
  for (auto s : v.strings) h += s.size() + (s.empty() ? 0 : static_cast<uint8_t>(s.back()));
  for (const auto& it : v.items) Walk(it);
  g_sink = g_sink + h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = pocketlm::GgufFile::FromBytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
  if (!f.ok()) {
    g_sink = g_sink + f.status().message().size();
    return 0;
  }
  uint64_t h = f->alignment() + f->data_offset() + f->version();
  for (const auto& kv : f->kvs()) {
    Walk(kv.value);
    // Every typed getter, whatever the stored type: wrong types must come back as errors, not crashes.
    auto i = f->GetInt(kv.key);
    auto d = f->GetFloat(kv.key);
    auto b = f->GetBool(kv.key);
    auto s = f->GetString(kv.key);
    auto a = f->GetArray(kv.key, kv.value.elem_type);
    h += i.ok() ? static_cast<uint64_t>(i.value()) : 1;
    h += d.ok() ? static_cast<uint64_t>(d.value() == d.value()) : 2;
    h += b.ok() ? static_cast<uint64_t>(b.value()) : 3;
    h += s.ok() ? s.value().size() : 4;
    h += a.ok() ? a.value()->count : 5;
    h += f->GetInt(kv.key, 0).ok() + f->GetFloat(kv.key, 0.0).ok() + f->GetBool(kv.key, false).ok();
  }
  for (const auto& t : f->tensors()) {
    h += static_cast<uint64_t>(t.n_elements()) + pocketlm::ShapeString(t).size();
    const pocketlm::TensorView v = pocketlm::ViewOf(t);
    if (t.nbytes > 0) {
      h += t.data[0] + t.data[t.nbytes - 1];
      h += v.data[v.nbytes - 1];
    }
    if (f->FindTensor(t.name) != &t) __builtin_trap();  // names are unique, so lookup finds this entry
  }
  g_sink = g_sink + h;
  return 0;
}
