// UTF-8 helpers shared by the file readers (validation of strings) and the tokenizers (code point iteration).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pocketlm {

// Length in bytes of the UTF-8 sequence introduced by lead byte `c` (1 for invalid lead bytes).
inline size_t Utf8SequenceLength(uint8_t c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes one code point at s[*pos], advancing *pos. Returns false (and advances by one byte) on an invalid,
// overlong or truncated sequence or a surrogate.
bool DecodeUtf8(std::string_view s, size_t* pos, uint32_t* cp);

// Appends the UTF-8 encoding of `cp` (must be <= 0x10FFFF).
void AppendUtf8(uint32_t cp, std::string* out);

// True when `s` is entirely valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Whether every byte is visible ASCII (0x21..0x7e: no space, control character or non-ASCII byte), as HTTP tokens,
// API keys and names that reach logs must be.
inline bool IsVisibleAscii(std::string_view s) {
  for (const char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// Number of bytes at the end of `s` that form an incomplete (but so far valid) UTF-8 sequence, so a streaming
// printer can hold them back until the rest arrives.
size_t IncompleteUtf8Suffix(std::string_view s);

}  // namespace pocketlm
