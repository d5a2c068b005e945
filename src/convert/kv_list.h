// An ordered list of GGUF metadata entries under construction (GgufStreamWriter takes them in this order, the order
// in which convert_hf_to_gguf.py's GGUFWriter adds them).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf/gguf_writer.h"

namespace pocketlm::convert {

class KvList {
 public:
  void U32(const std::string& key, uint32_t v) {
    GgufOwnedValue o;
    o.type = GgufType::kU32;
    o.u = v;
    Set(key, std::move(o));
  }
  void F32(const std::string& key, float v) {
    GgufOwnedValue o;
    o.type = GgufType::kF32;
    o.f = v;
    Set(key, std::move(o));
  }
  void Bool(const std::string& key, bool v) {
    GgufOwnedValue o;
    o.type = GgufType::kBool;
    o.u = v ? 1 : 0;
    Set(key, std::move(o));
  }
  void Str(const std::string& key, std::string v) {
    GgufOwnedValue o;
    o.type = GgufType::kString;
    o.str = std::move(v);
    Set(key, std::move(o));
  }
  void StrArray(const std::string& key, std::vector<std::string> v) {
    GgufOwnedValue o;
    o.type = GgufType::kArray;
    o.elem_type = GgufType::kString;
    o.count = v.size();
    o.strings = std::move(v);
    Set(key, std::move(o));
  }
  void F32Array(const std::string& key, const std::vector<float>& v) { Numeric(key, GgufType::kF32, v); }
  void I32Array(const std::string& key, const std::vector<int32_t>& v) { Numeric(key, GgufType::kI32, v); }

  // Setting a key twice replaces the value in place (keys stay unique).
  void Set(const std::string& key, GgufOwnedValue v) {
    for (auto& kv : kvs_) {
      if (kv.first == key) {
        kv.second = std::move(v);
        return;
      }
    }
    kvs_.emplace_back(key, std::move(v));
  }
  void Append(KvList&& other) {
    for (auto& kv : other.kvs_) Set(kv.first, std::move(kv.second));
  }
  const std::vector<std::pair<std::string, GgufOwnedValue>>& kvs() const { return kvs_; }

 private:
  template <typename T>
  void Numeric(const std::string& key, GgufType elem, const std::vector<T>& v) {
    GgufOwnedValue o;
    o.type = GgufType::kArray;
    o.elem_type = elem;
    o.count = v.size();
    o.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(o.raw.data(), v.data(), o.raw.size());  // little-endian hosts only, as the writer
    Set(key, std::move(o));
  }
  std::vector<std::pair<std::string, GgufOwnedValue>> kvs_;
};

}  // namespace pocketlm::convert
