// GPT-2's byte-level alphabet (openai/gpt-2 encoder.py bytes_to_unicode, llama.cpp unicode.cpp): every byte maps
// to a printable code point so BPE vocabularies can store arbitrary bytes as text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pocketlm {

// Code point standing for byte `b`: printable Latin-1 bytes map to themselves, the other 68 to U+0100...
uint32_t ByteToCodepoint(uint8_t b);
// Inverse; -1 when `cp` is not in the alphabet.
int ByteFromCodepoint(uint32_t cp);
// Appends the byte-level encoding (UTF-8 of the mapped code points) of `bytes`.
void AppendByteEncoded(std::string_view bytes, std::string* out);

}  // namespace pocketlm
