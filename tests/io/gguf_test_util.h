// Hand-assembled GGUF bytes for tests that need files the writer refuses to produce.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/gguf/gguf_types.h"

namespace pocketlm::testing_util {

// Little-endian byte builder (the tests run on little-endian hosts, as GGUF itself assumes).
struct GgufBytes {
  std::vector<uint8_t> b;

  template <typename T>
  GgufBytes& Put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  GgufBytes& U8(uint8_t v) { return Put(v); }
  GgufBytes& U32(uint32_t v) { return Put(v); }
  GgufBytes& U64(uint64_t v) { return Put(v); }
  GgufBytes& Str(const std::string& s) {
    U64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return U32(kGgufMagic).U32(version).U64(n_tensors).U64(n_kv);
  }
  GgufBytes& KeyType(const std::string& key, GgufType t) { return Str(key).U32(static_cast<uint32_t>(t)); }
  GgufBytes& KvU32(const std::string& key, uint32_t v) { return KeyType(key, GgufType::kU32).U32(v); }
  GgufBytes& KvString(const std::string& key, const std::string& v) { return KeyType(key, GgufType::kString).Str(v); }
  GgufBytes& TensorInfo(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    return U32(type).U64(offset);
  }
  GgufBytes& PadTo(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
  GgufBytes& Zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

}  // namespace pocketlm::testing_util
