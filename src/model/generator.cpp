#include "model/generator.h"

#include <algorithm>
#include <span>

namespace pocketlm {

namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Result<Generator> Generator::Create(Context& ctx, std::vector<int32_t> prompt, const GeneratorParams& params,
                                    size_t n_cached) {
  PLM_RETURN_IF_ERROR(params.sampling.Validate());
  if (params.max_tokens < 0) return InvalidArgument("max_tokens must be >= 0");
  if (prompt.empty()) return InvalidArgument("the prompt is empty (and the model adds no BOS token)");
  if (n_cached > prompt.size() || static_cast<int64_t>(n_cached) > ctx.n_past()) {
    return Internal("the context holds " + std::to_string(ctx.n_past()) + " positions, fewer than the " +
                    std::to_string(n_cached) + " cached prompt tokens it was given with");
  }
  const size_t n_new = prompt.size() - n_cached;
  if (ctx.n_past() + static_cast<int64_t>(n_new) > ctx.n_ctx()) {
    return OutOfRange("the prompt has " + std::to_string(n_new) + " tokens but the context holds " +
                      std::to_string(ctx.n_ctx() - ctx.n_past()) + " more (shorten it or use a larger context)");
  }
  return Generator(ctx, std::move(prompt), params, n_cached);
}

Generator::Generator(Context& ctx, std::vector<int32_t> prompt, const GeneratorParams& params, size_t n_cached)
    : ctx_(&ctx),
      params_(params),
      prompt_(std::move(prompt)),
      n_cached_(n_cached),
      n_prefilled_(n_cached),
      history_(prompt_),
      sampler_(params.sampling),
      detok_(ctx.model().tokenizer(), /*at_sequence_start=*/false),  // continues after the prompt
      stop_(params.stop),
      t_start_(std::chrono::steady_clock::now()),
      t_prefilled_(t_start_),
      t_last_(t_start_) {}

Status Generator::Prefill() {
  const size_t left = prompt_.size() - n_prefilled_;
  const size_t n = params_.prefill_chunk > 0 ? std::min(left, static_cast<size_t>(params_.prefill_chunk)) : left;
  PLM_RETURN_IF_ERROR(
      ctx_->Eval(std::span<const int32_t>(prompt_.data() + n_prefilled_, n), /*all_logits=*/false, &logits_));
  n_prefilled_ += n;
  t_prefilled_ = t_last_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

bool Generator::Next(int32_t* token, std::string* text) {
  if (reason_ != StopReason::kNone) return true;
  if (n_generated() >= params_.max_tokens) return End(StopReason::kMaxTokens);
  const int32_t next = sampler_.Sample(logits_, history_);
  if (params_.stop_at_end_of_generation && ctx_->model().tokenizer().IsEndOfGeneration(next)) {
    return End(StopReason::kEndOfGeneration);
  }
  history_.push_back(next);
  generated_.push_back(next);
  if (std::string piece = detok_.Push(next); !piece.empty()) *text += stop_.Push(piece);
  if (stop_.stopped()) return End(StopReason::kStopString);
  if (n_generated() >= params_.max_tokens) return End(StopReason::kMaxTokens);
  if (ctx_->n_past() >= ctx_->n_ctx()) return End(StopReason::kContextFull);
  *token = next;
  return false;
}

Status Generator::Decode(int32_t token) {
  PLM_RETURN_IF_ERROR(ctx_->Eval(std::span<const int32_t>(&token, 1), /*all_logits=*/false, &logits_));
  t_last_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

void Generator::TakeLogits(const float* row) {
  logits_.assign(row, row + ctx_->model().config().n_vocab);
  t_last_ = std::chrono::steady_clock::now();
}

std::string Generator::Finish() {
  if (stop_.stopped()) return {};
  std::string tail = stop_.Push(detok_.Flush());
  if (stop_.stopped()) {
    if (reason_ != StopReason::kNone) reason_ = StopReason::kStopString;  // the last bytes completed a stop string
  } else {
    tail += stop_.Flush();
  }
  return tail;
}

bool Generator::End(StopReason r) {
  reason_ = r;
  t_last_ = std::chrono::steady_clock::now();
  return true;
}

double Generator::prefill_seconds() const {
  return Seconds(t_start_, t_prefilled_);
}

double Generator::decode_seconds() const {
  return Seconds(t_prefilled_, t_last_);
}

}  // namespace pocketlm
