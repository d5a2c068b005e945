#include "model/generate.h"

#include <chrono>

namespace pocketlm {

namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Result<GenerateStats> Generate(Context& ctx, std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(std::string_view)>& on_text, std::vector<int32_t>* generated) {
  PLM_RETURN_IF_ERROR(params.sampling.Validate());
  if (prompt.empty()) return InvalidArgument("the prompt is empty (and the model adds no BOS token)");
  if (ctx.n_past() + static_cast<int64_t>(prompt.size()) > ctx.n_ctx()) {
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                      std::to_string(ctx.n_ctx() - ctx.n_past()) + " more (shorten it or use a larger context)");
  }
  const Tokenizer& tok = ctx.model().tokenizer();
  GenerateStats stats;
  stats.n_prompt = static_cast<int>(prompt.size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> logits;
  Sampler sampler(params.sampling);
  StreamingDetokenizer detok(tok, /*at_sequence_start=*/false);  // continuing after the prompt

  auto t0 = std::chrono::steady_clock::now();
  PLM_RETURN_IF_ERROR(ctx.Eval(prompt, /*all_logits=*/false, &logits));
  auto t1 = std::chrono::steady_clock::now();
  stats.prefill_seconds = Seconds(t0, t1);

  for (int i = 0; i < params.n_predict; ++i) {
    const int32_t next = sampler.Sample(logits, history);
    if (params.stop_at_end_of_generation && tok.IsEndOfGeneration(next)) break;
    history.push_back(next);
    if (generated != nullptr) generated->push_back(next);
    ++stats.n_generated;
    std::string piece = detok.Push(next);
    if (!piece.empty() && !on_text(piece)) break;
    if (i + 1 == params.n_predict || ctx.n_past() >= ctx.n_ctx()) break;
    PLM_RETURN_IF_ERROR(ctx.Eval(std::span<const int32_t>(&next, 1), false, &logits));
  }
  std::string tail = detok.Flush();
  if (!tail.empty()) on_text(tail);
  stats.decode_seconds = Seconds(t1, std::chrono::steady_clock::now());
  return stats;
}

}  // namespace pocketlm
