// Unicode Normalization Form C (UAX #15) of UTF-8 text, for vocabularies whose Hugging Face tokenizer.json has
// "normalizer": {"type": "NFC"} (Qwen2, Qwen2.5, Qwen3). Unicode 15 tables generated from the UCD by
// scripts/gen_unicode_nfc_tables.py.
#pragma once

#include <string>
#include <string_view>

namespace pocketlm {

// NFC of `utf8`: full canonical decomposition (Hangul algorithmically), canonical ordering, canonical
// composition. Any byte string is accepted: a byte that does not start a valid UTF-8 sequence (DecodeUtf8's
// rules) is copied unchanged and acts as a starter that nothing reorders across or composes with.
std::string ToNfc(std::string_view utf8);

// ToNfc without a copy when nothing changes: returns false and leaves *out alone when `utf8` is already NFC,
// else sets *out = ToNfc(utf8) and returns true. Text that passes the NFC quick check (ASCII, most text in
// precomposed scripts) is only scanned.
bool NormalizeNfc(std::string_view utf8, std::string* out);

}  // namespace pocketlm
