// A short identifier of a base model's weights, recorded in adapters so that loading an adapter onto a
// different base (another fine-tune of the same architecture, a different quantization) can be detected.
#pragma once

#include <string>

#include "io/gguf/gguf_reader.h"

namespace pocketlm {

// 16 hex digits: XXH3-64 over every tensor's name, type and shape and 64 evenly spaced 64-byte samples of its
// data. Sampling keeps it cheap on a multi-GB file (a few thousand page reads) while any re-quantization or
// fine-tune changes it.
std::string ModelFingerprint(const GgufFile& f);

}  // namespace pocketlm
