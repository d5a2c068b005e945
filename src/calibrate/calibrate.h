// `pocketlm calibrate`: the importance matrix of a model on a calibration text, as llama.cpp's llama-imatrix
// computes it (examples/imatrix/imatrix.cpp at c392e50):
//  - the tokens (BOS first when the model adds one) are cut into floor(n / n_ctx) chunks of n_ctx tokens; a
//    remainder is dropped. Each chunk is evaluated from an empty cache with its first token replaced by BOS;
//  - for every product of a "blk.*" weight with the activations (attn_q/k/v or attn_qkv, attn_output, ffn_gate,
//    ffn_up, ffn_down; not the output projection), each input column's squared activations are summed over
//    every token, and each chunk counts as one call;
//  - an entry's value is sum / tokens, the mean (the file stores it times the calls, see quantize/imatrix_file.h).
// The sums are kept in double: they differ from llama.cpp's float sums by rounding only.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "model/context.h"
#include "quantize/imatrix_file.h"

namespace pocketlm {

struct CalibrateOptions {
  int max_chunks = 0;   // 0: every whole chunk of the text
  std::string dataset;  // recorded in the file (llama-imatrix records the text file's name)
};

// Chunks of ctx.n_ctx() tokens, evaluated on `ctx` (its cache is reset). `progress(done, total)` after each chunk.
// Errors: fewer tokens than one chunk (the message says how many there are and what --ctx would fit), an
// activation that is not finite (names the tensor).
Result<quantize::ImportanceMatrix> Calibrate(Context& ctx, std::span<const int32_t> tokens, const CalibrateOptions& o,
                                             const std::function<void(int, int)>& progress = nullptr);

}  // namespace pocketlm
