// Which bytes of a text each token of its encoding stands for, so that per-byte properties of the text (the loss
// mask of a chat's segments) can be given to tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace pocketlm {

struct TokenSpan {
  size_t begin = 0, end = 0;  // bytes [begin, end) of the text
  bool operator==(const TokenSpan&) const = default;
};

// For ids = tokenizer.Encode(text, /*add_special=*/false, /*parse_special=*/false), any bytes as text: the span of
// `text` each token stands for. The spans tile the text in token order: spans[0].begin == 0, the last one ends at
// text.size(), and each one starts where the one before ends or equals it. Spans are exact to the byte (a
// byte-fallback token for one byte of a multi-byte character covers that byte), except that tokens that only
// together stand for whole bytes of the text form a unit and all get the unit's span: SentencePiece byte tokens
// <0xE2><0x96><0x81> spelling the escaped space "▁" of one " " of the text, or the space prefix (which stands
// for no byte, so its span is empty). Also:
//   - a user-defined token with lstrip / rstrip covers the whitespace it swallowed;
//   - bytes that no token stands for (a vocabulary without byte fallback drops what it cannot spell) go to the
//     token before them (the first token when none is before);
//   - an NFC-normalizing vocabulary (normalizes_nfc()) encodes the NFC form of the text between user-defined
//     tokens; where that differs from the text there is no byte correspondence, and the stretch is one unit.
// Empty `ids` give no spans (even for a text the vocabulary dropped entirely).
// Error (kUnsupported): `ids` are not that encoding of `text`.
Result<std::vector<TokenSpan>> AlignTokens(const Tokenizer& tokenizer, std::string_view text,
                                           std::span<const int32_t> ids);

}  // namespace pocketlm
