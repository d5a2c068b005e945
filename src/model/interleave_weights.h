// Load-time interleaving of q4_0 projection weights for the decode kernel (tensor/quant/interleave.h).
#pragma once

#include "base/status.h"
#include "io/gguf/gguf_reader.h"
#include "model/weights.h"

namespace pocketlm {

// Every q4_0 projection of every layer (and the output matrix unless it is the token embedding, whose rows the
// embedding lookup reads) rewritten in place, in this process's private copy of the mapped file, with
// view.interleave = 16. Peak memory does not grow: each written page replaces the file page it copies.
Status InterleaveQ4_0Weights(GgufFile& f, ModelWeights* w);

}  // namespace pocketlm
