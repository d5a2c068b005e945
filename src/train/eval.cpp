#include "train/eval.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>

#include "model/generate.h"

namespace pocketlm {
namespace {

// log sum_i exp(z_i), in double.
double LogSumExp(const float* z, int n) {
  const double mx = *std::max_element(z, z + n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(z[i]) - mx);
  return mx + std::log(s);
}

std::string_view TrimWs(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Calls fn(window_begin, logits) for each context-sized window of `tokens`, logits (len, n_vocab).
Status ForEachWindow(Context& ctx, const std::vector<int32_t>& tokens,
                     const std::function<void(size_t, size_t, const std::vector<float>&)>& fn) {
  const size_t window = static_cast<size_t>(ctx.n_ctx());
  std::vector<float> logits;
  for (size_t w0 = 0; w0 < tokens.size(); w0 += window) {
    const size_t len = std::min(window, tokens.size() - w0);
    ctx.Reset();
    PLM_RETURN_IF_ERROR(ctx.Eval(std::span<const int32_t>(tokens.data() + w0, len), true, &logits));
    fn(w0, len, logits);
  }
  return Status::Ok();
}

}  // namespace

double PerplexityResult::Perplexity() const {
  return n_scored > 0 ? std::exp(MeanNll()) : 0;
}

Result<PerplexityResult> Perplexity(Context& ctx, const std::vector<TrainExample>& examples) {
  const int V = ctx.model().config().n_vocab;
  PerplexityResult r;
  for (const TrainExample& ex : examples) {
    PLM_RETURN_IF_ERROR(ForEachWindow(ctx, ex.tokens, [&](size_t w0, size_t len, const std::vector<float>& logits) {
      for (size_t i = 1; i < len; ++i) {
        if (!ex.trainable[w0 + i]) continue;
        const float* z = logits.data() + (i - 1) * static_cast<size_t>(V);
        r.nll_sum += LogSumExp(z, V) - z[ex.tokens[w0 + i]];
        ++r.n_scored;
      }
    }));
  }
  if (r.n_scored == 0) return InvalidArgument("no tokens to score");
  return r;
}

Result<std::vector<ExactMatchItem>> LoadExactMatchItems(const std::string& path, const Tokenizer& tok,
                                                        ChatTemplateKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "'");
  std::vector<ExactMatchItem> items;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (TrimWs(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgument(where + "not a JSON object");
    ExactMatchItem item;
    if (j.contains("messages")) {
      const auto& msgs = j["messages"];
      if (!msgs.is_array() || msgs.size() < 2)
        return InvalidArgument(where + "\"messages\" needs a prompt and a reply");
      std::vector<ChatMessage> prompt;
      for (size_t i = 0; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
            !m["content"].is_string()) {
          return InvalidArgument(where + "each message needs string \"role\" and \"content\"");
        }
        auto role = ChatRoleFromName(m["role"].get<std::string>());
        if (!role.ok()) return InvalidArgument(where + role.status().message());
        if (i + 1 == msgs.size()) {
          if (role.value() != ChatRole::kAssistant) {
            return InvalidArgument(where + "the last message must be the assistant's expected reply");
          }
          item.expected = m["content"].get<std::string>();
        } else {
          prompt.push_back({role.value(), m["content"].get<std::string>(), true});
        }
      }
      auto segments = RenderChat(kind, prompt, /*add_generation_prompt=*/true);
      if (!segments.ok()) return InvalidArgument(where + segments.status().message());
      auto tokens = TokenizeChat(tok, segments.value());
      if (!tokens.ok()) return InvalidArgument(where + tokens.status().message());
      item.prompt = std::move(tokens.value().tokens);
    } else if (j.contains("prompt") && j.contains("completion") && j["prompt"].is_string() &&
               j["completion"].is_string()) {
      auto tokens = tok.Encode(j["prompt"].get<std::string>(), /*add_special=*/true, /*parse_special=*/false);
      if (!tokens.ok()) return InvalidArgument(where + tokens.status().message());
      item.prompt = std::move(tokens).value();
      item.expected = j["completion"].get<std::string>();
    } else {
      return InvalidArgument(where + "expected {\"messages\": [...]} or {\"prompt\", \"completion\"}");
    }
    if (item.prompt.empty()) return InvalidArgument(where + "empty prompt");
    items.push_back(std::move(item));
  }
  if (items.empty()) return InvalidArgument("'" + path + "' has no test items");
  return items;
}

Result<ExactMatchResult> ExactMatch(Context& ctx, const std::vector<ExactMatchItem>& items, int max_tokens,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  ExactMatchResult r;
  GenerateParams gp;
  gp.n_predict = max_tokens;
  gp.sampling.temperature = 0.0f;
  for (const ExactMatchItem& item : items) {
    ctx.Reset();
    std::string text;
    PLM_RETURN_IF_ERROR(Generate(ctx, item.prompt, gp, [&text](std::string_view piece) {
                          text += piece;
                          return true;
                        }).status());
    ++r.n;
    if (TrimWs(text) == TrimWs(item.expected)) {
      ++r.correct;
    } else if (r.first_misses.size() < 5) {
      r.first_misses.push_back("expected \"" + std::string(TrimWs(item.expected)) + "\", got \"" +
                               std::string(TrimWs(text)) + "\"");
    }
    if (progress) progress(r.n, static_cast<int64_t>(items.size()));
  }
  return r;
}

Result<KlResult> KlDivergence(Context& model, Context& reference, const std::vector<TrainExample>& examples) {
  const int V = model.model().config().n_vocab;
  if (reference.model().config().n_vocab != V) {
    return InvalidArgument("the reference model's vocabulary (" + std::to_string(reference.model().config().n_vocab) +
                           " tokens) differs from the model's (" + std::to_string(V) + ")");
  }
  if (reference.n_ctx() != model.n_ctx()) return InvalidArgument("both contexts need the same size");
  KlResult r;
  std::vector<std::vector<float>> ref_windows;
  for (const TrainExample& ex : examples) {
    ref_windows.clear();
    PLM_RETURN_IF_ERROR(ForEachWindow(reference, ex.tokens, [&](size_t, size_t, const std::vector<float>& logits) {
      ref_windows.push_back(logits);
    }));
    size_t w = 0;
    PLM_RETURN_IF_ERROR(ForEachWindow(model, ex.tokens, [&](size_t, size_t len, const std::vector<float>& logits) {
      const std::vector<float>& ref = ref_windows[w++];
      for (size_t i = 0; i < len; ++i) {
        const float* p = ref.data() + i * static_cast<size_t>(V);
        const float* q = logits.data() + i * static_cast<size_t>(V);
        const double lse_p = LogSumExp(p, V), lse_q = LogSumExp(q, V);
        double kl = 0;
        for (int k = 0; k < V; ++k) {
          const double lp = p[k] - lse_p;
          kl += std::exp(lp) * (lp - (q[k] - lse_q));
        }
        r.kl_sum += std::max(kl, 0.0);
        ++r.n_positions;
        r.top1_agree += std::max_element(p, p + V) - p == std::max_element(q, q + V) - q;
      }
    }));
  }
  if (r.n_positions == 0) return InvalidArgument("no text to compare");
  return r;
}

Result<KlChunks> PlanKlChunks(int64_t n_tokens, int n_ctx, int max_chunks) {
  if (n_ctx < 3) {
    return InvalidArgument(
        "a context of " + std::to_string(n_ctx) +
        " tokens scores no position (KL chunks score n_ctx - 1 - n_ctx/2 tokens); use --ctx 3 or more");
  }
  KlChunks c;
  c.n_ctx = n_ctx;
  c.first = n_ctx / 2;  // perplexity.cpp: const int first = n_ctx/2;
  c.n_tokens = n_tokens;
  // perplexity.cpp: n_chunk_max = tokens.size() / n_ctx; n_chunk = min(--chunks, n_chunk_max).
  const int64_t n_chunk_max = n_tokens / n_ctx;
  if (n_chunk_max < 1) {
    // llama-perplexity itself wants two chunks (2 n_ctx tokens).
    const std::string hint = n_tokens >= 6 ? "; --ctx " + std::to_string(n_tokens) + " or less would fit (--ctx " +
                                                 std::to_string(n_tokens / 2) + " for llama-perplexity's two chunks)"
                                           : "";
    return InvalidArgument("the text is " + std::to_string(n_tokens) + " tokens, shorter than one chunk of --ctx " +
                           std::to_string(n_ctx) + hint);
  }
  c.n_chunks = static_cast<int>(max_chunks > 0 ? std::min<int64_t>(max_chunks, n_chunk_max) : n_chunk_max);
  return c;
}

Result<KlStats> KlDivergenceChunked(Context& model, Context& reference, const std::vector<int32_t>& tokens,
                                    const KlChunks& chunks, KlBaseRounding rounding,
                                    const std::function<void(int, int, const KlStats&)>& progress) {
  const int V = model.model().config().n_vocab;
  if (reference.model().config().n_vocab != V) {
    return InvalidArgument("the reference model's vocabulary (" + std::to_string(reference.model().config().n_vocab) +
                           " tokens) differs from the model's (" + std::to_string(V) + ")");
  }
  const int n_ctx = chunks.n_ctx, first = chunks.first, n_scored = chunks.ScoredPerChunk();
  if (model.n_ctx() < n_ctx || reference.n_ctx() < n_ctx) {
    return InvalidArgument("the contexts hold fewer than " + std::to_string(n_ctx) + " positions");
  }
  if (static_cast<int64_t>(chunks.n_chunks) * n_ctx > static_cast<int64_t>(tokens.size()) || n_scored < 1) {
    return InvalidArgument("the chunks do not fit the tokens");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= V) return InvalidArgument("token " + std::to_string(t) + " is outside the vocabulary");
  }
  KlStats stats(rounding);
  // Both models evaluate the scored positions in slices of at most ~16M logits each (64 MB per model, whatever
  // n_ctx), each context continuing its own cache: perplexity.cpp evaluates the whole chunk and reads the same rows.
  const int slice = std::clamp(chunks.rows_per_eval > 0 ? chunks.rows_per_eval : (16 << 20) / V, 1, n_scored);
  std::vector<int32_t> ref_toks, toks;
  std::vector<float> scratch, ref_logits, logits;
  // A chunk's tokens for `ctx`, its first token replaced by BOS when the model adds one (perplexity.cpp: "add BOS
  // token for the first batch of each chunk"); the prefix before `first` is evaluated without logits.
  auto start = [&](Context& ctx, std::span<const int32_t> chunk, std::vector<int32_t>* out) -> Status {
    const Tokenizer& tok = ctx.model().tokenizer();
    out->assign(chunk.begin(), chunk.end());
    if (tok.add_bos() && tok.bos() >= 0) (*out)[0] = tok.bos();
    ctx.Reset();
    return ctx.Eval(std::span<const int32_t>(out->data(), static_cast<size_t>(first)), false, &scratch);
  };
  for (int c = 0; c < chunks.n_chunks; ++c) {
    const std::span<const int32_t> chunk(tokens.data() + static_cast<size_t>(c) * static_cast<size_t>(n_ctx),
                                         static_cast<size_t>(n_ctx));
    PLM_RETURN_IF_ERROR(start(reference, chunk, &ref_toks));
    PLM_RETURN_IF_ERROR(start(model, chunk, &toks));
    // Positions first .. n_ctx - 2 predict tokens first + 1 .. n_ctx - 1 (the last token is never evaluated).
    for (int j0 = 0; j0 < n_scored; j0 += slice) {
      const size_t len = static_cast<size_t>(std::min(slice, n_scored - j0));
      const size_t at = static_cast<size_t>(first + j0);
      PLM_RETURN_IF_ERROR(reference.Eval(std::span<const int32_t>(ref_toks.data() + at, len), true, &ref_logits));
      PLM_RETURN_IF_ERROR(model.Eval(std::span<const int32_t>(toks.data() + at, len), true, &logits));
      for (size_t j = 0; j < len; ++j) {
        const size_t row = j * static_cast<size_t>(V);
        stats.Add(ref_logits.data() + row, logits.data() + row, V, chunk[at + j + 1]);
      }
    }
    if (progress) progress(c + 1, chunks.n_chunks, stats);
  }
  return stats;
}

Result<std::vector<TrainExample>> TextWindows(const std::string& text, const Tokenizer& tok, int window) {
  if (window < 2) return InvalidArgument("window must be at least 2 tokens");
  PLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.Encode(text, /*add_special=*/true, /*parse_special=*/false));
  if (ids.size() < 2) return InvalidArgument("the text has fewer than two tokens");
  std::vector<TrainExample> out;
  for (size_t w0 = 0; w0 < ids.size(); w0 += static_cast<size_t>(window)) {
    const size_t len = std::min(static_cast<size_t>(window), ids.size() - w0);
    if (len < 2) break;
    TrainExample ex;
    ex.tokens.assign(ids.begin() + static_cast<std::ptrdiff_t>(w0),
                     ids.begin() + static_cast<std::ptrdiff_t>(w0 + len));
    ex.trainable.assign(len, 1);
    ex.trainable[0] = 0;
    out.push_back(std::move(ex));
  }
  return out;
}

}  // namespace pocketlm
