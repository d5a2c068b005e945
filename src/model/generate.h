// Prompt -> streamed text in one call: the generation loop of model/generator.h driven to its end.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/context.h"
#include "model/generator.h"
#include "model/sampler.h"

namespace pocketlm {

struct GenerateParams {
  int n_predict = 128;  // maximum new tokens
  SamplingParams sampling;
  bool stop_at_end_of_generation = true;
  std::vector<std::string> stop;  // stop strings: the reply ends before the first one (not shown)
};

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  StopReason reason = StopReason::kNone;  // kNone: on_text asked to stop
};

// Calls on_text with each piece of text that is safe to show (complete UTF-8, not part of a stop string) as it is
// produced; on_text returning false stops generation there (the last token is then not evaluated). Generated token
// ids are appended to *generated when non-null.
Result<GenerateStats> Generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(std::string_view)>& on_text,
                               std::vector<int32_t>* generated = nullptr);

}  // namespace pocketlm
