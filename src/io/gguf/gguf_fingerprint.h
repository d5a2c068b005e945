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

// 16 hex digits that a model shares with its quantized and F16/BF16 versions but not with another model of the
// same shape: XXH3-64 over the architecture, every tensor's name and shape (not its type, in name order), and the
// values of every 1-D F32 tensor (norm weights and biases, which quantization - pocketlm's and llama.cpp's - keeps in
// F32). An adapter records its base's lineage so that it runs on any quantization of that base and is refused on other
// models. Untrained models whose norms are all ones share a lineage when their shapes agree.
std::string ModelLineage(const GgufFile& f);

}  // namespace pocketlm
