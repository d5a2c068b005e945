// Prompt -> streamed text: prefill the prompt, then sample and decode one token at a time.
#pragma once

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/context.h"
#include "model/sampler.h"

namespace pocketlm {

struct GenerateParams {
  int n_predict = 128;  // maximum new tokens
  SamplingParams sampling;
  bool stop_at_end_of_generation = true;
};

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Calls on_text with each complete UTF-8 piece as it is produced; on_text returning false stops generation.
// Generated token ids are appended to *generated when non-null.
Result<GenerateStats> Generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(std::string_view)>& on_text,
                               std::vector<int32_t>* generated = nullptr);

}  // namespace pocketlm
