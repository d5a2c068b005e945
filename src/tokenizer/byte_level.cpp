#include "tokenizer/byte_level.h"

#include <array>

#include "base/utf8.h"

namespace pocketlm {
namespace {

bool Printable(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_utf8;
  Tables() {
    uint32_t next = 256;  // non-printable bytes take U+0100.. in byte order
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = Printable(b) ? static_cast<uint32_t>(b) : next++;
      AppendUtf8(to_cp[b], &to_utf8[b]);
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;  // immutable after construction (thread-safe static init)
  return tables;
}

}  // namespace

uint32_t ByteToCodepoint(uint8_t b) {
  return GetTables().to_cp[b];
}

int ByteFromCodepoint(uint32_t cp) {
  if (cp < 256) return Printable(static_cast<int>(cp)) ? static_cast<int>(cp) : -1;
  if (cp >= 256 + 68) return -1;
  // The (cp - 256)-th non-printable byte.
  int k = static_cast<int>(cp - 256);
  for (int b = 0; b < 256; ++b) {
    if (!Printable(b) && k-- == 0) return b;
  }
  return -1;
}

void AppendByteEncoded(std::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  for (char c : bytes) out->append(t.to_utf8[static_cast<uint8_t>(c)]);
}

}  // namespace pocketlm
