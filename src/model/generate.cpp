#include "model/generate.h"

namespace pocketlm {

Result<GenerateStats> Generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(std::string_view)>& on_text, std::vector<int32_t>* generated) {
  GeneratorParams gp;
  gp.max_tokens = params.n_predict;
  gp.sampling = params.sampling;
  gp.stop_at_end_of_generation = params.stop_at_end_of_generation;
  gp.stop = params.stop;
  PLM_ASSIGN_OR_RETURN(Generator g, Generator::Create(ctx, std::vector<int32_t>(prompt.begin(), prompt.end()), gp));
  while (g.prefilling()) PLM_RETURN_IF_ERROR(g.Prefill());
  bool caller_stopped = false;
  Status status;
  for (;;) {
    int32_t token = 0;
    std::string text;
    const bool done = g.Next(&token, &text);
    if (!text.empty() && !on_text(text)) {
      caller_stopped = true;
      break;
    }
    if (done) break;
    if (status = g.Decode(token); !status.ok()) break;
  }
  if (!caller_stopped) {
    if (std::string tail = g.Finish(); !tail.empty()) on_text(tail);
  }
  if (generated != nullptr) generated->insert(generated->end(), g.generated().begin(), g.generated().end());
  PLM_RETURN_IF_ERROR(status);
  GenerateStats stats;
  stats.n_prompt = static_cast<int>(prompt.size());
  stats.n_generated = g.n_generated();
  stats.prefill_seconds = g.prefill_seconds();
  stats.decode_seconds = g.decode_seconds();
  stats.reason = caller_stopped ? StopReason::kNone : g.reason();
  return stats;
}

}  // namespace pocketlm
