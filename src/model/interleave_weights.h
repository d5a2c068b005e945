// Load-time interleaving of q4_0 / q5_0 / q8_0 / q4_K / q6_K weights for the faster kernels
// (tensor/quant/interleave.h).
#pragma once

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "model/weights.h"

namespace pocketlm {

// Every projection of every layer and the output matrix whose type has an interleaved layout with a kernel on this
// CPU (InterleavedIsFaster) rewritten in place, in this process's private copy of the mapped file, with
// view.interleave = 16; a tied token embedding too (the embedding lookup deinterleaves its row, DequantizeRow).
// Peak RSS does not grow (each written page replaces the file page it copies in RSS), but those pages become
// anonymous memory: not reclaimable without swap, not shared between processes.
// When the mapping cannot be made writable, nothing changes (the file layout serves as well, slower).
Status InterleaveWeights(GgufFile& f, ModelWeights* w);

}  // namespace pocketlm
