// pocketlm eval -m MODEL [--lora ...] --perplexity FILE | --exact-match FILE.jsonl | --kl REF.gguf --text FILE
// Each measurement ends with one summary line on stdout; progress goes to stderr.
#include "cmd_eval.h"

#include <unistd.h>

#include <cstdio>

#include "train/eval.h"

namespace pocketlm::cli {

void EvalOptions::Declare(Options& o) {
  model.Declare(o);
  o.Add("--perplexity", &perplexity_path,
        "Perplexity of a text file, or of the trainable tokens of a JSONL dataset (*.jsonl: replies only)");
  o.Add("--exact-match", &exact_match_path,
        "Exact-match accuracy of greedy answers on a JSONL test split ({\"messages\"} whose last message is "
        "the expected reply, or {\"prompt\", \"completion\"})");
  o.Add("--kl", &kl_reference, "Reference model (GGUF): KL divergence of -m (with adapters) from it on --text");
  o.Add("--text", &kl_text, "Text (or JSONL dataset) for --kl");
  ChatTemplateOption(o, &chat_template);
  o.Add("--max-tokens", &max_tokens, "Longest answer generated for --exact-match").ShowDefault().Range(1, 1 << 16);
  o.Add("--limit", &limit, "Use only the first N examples / items (0: all)").Range(int64_t{0}, int64_t{1} << 40);
}

namespace {

// A text file becomes context-sized windows; a .jsonl file a dataset (loss mask: replies / completions).
Result<std::vector<TrainExample>> LoadExamples(const std::string& path, const EvalOptions& o, const Model& model,
                                               int window) {
  std::vector<TrainExample> examples;
  if (path.size() > 6 && path.ends_with(".jsonl")) {
    DatasetOptions d;
    std::string note;
    PLM_ASSIGN_OR_RETURN(const ChatFormat format,
                         ChooseChatTemplate(model, o.chat_template, MissingMarkers::kRefuse, &note));
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    d.chat_template = format.kind;
    PLM_ASSIGN_OR_RETURN(Dataset data, LoadJsonlDataset(path, model.tokenizer(), d));
    examples = std::move(data.examples);
  } else {
    std::string text;
    PLM_RETURN_IF_ERROR(ReadTextFile(path, &text));
    PLM_ASSIGN_OR_RETURN(examples, TextWindows(text, model.tokenizer(), window));
  }
  if (o.limit > 0 && static_cast<int64_t>(examples.size()) > o.limit) examples.resize(static_cast<size_t>(o.limit));
  return examples;
}

}  // namespace

int EvalCommand(const EvalOptions& o) {
  const int n_measures = !o.perplexity_path.empty() + !o.exact_match_path.empty() + !o.kl_reference.empty();
  if (n_measures == 0) return Fail(InvalidArgument("choose a measurement: --perplexity, --exact-match or --kl"));
  if (!o.kl_reference.empty() && o.kl_text.empty()) return Fail(InvalidArgument("--kl needs --text FILE"));
  ModelOptions mo = o.model;
  if (mo.ctx == 0) mo.ctx = 512;
  auto lm = LoadModel(mo);
  if (!lm.ok()) return Fail(lm.status());
  Context& ctx = *lm.value().ctx;
  const Model& model = *lm.value().model;

  if (!o.perplexity_path.empty()) {
    auto ex = LoadExamples(o.perplexity_path, o, model, ctx.n_ctx());
    if (!ex.ok()) return Fail(ex.status());
    auto r = Perplexity(ctx, ex.value());
    if (!r.ok()) return Fail(r.status());
    std::printf("perplexity %.4f (mean negative log-likelihood %.4f nats over %lld tokens) on %s\n",
                r.value().Perplexity(), r.value().MeanNll(), static_cast<long long>(r.value().n_scored),
                o.perplexity_path.c_str());
  }
  if (!o.exact_match_path.empty()) {
    std::string note;
    auto format = ChooseChatTemplate(model, o.chat_template, MissingMarkers::kRefuse, &note);
    if (!format.ok()) return Fail(format.status());
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
    auto items = LoadExactMatchItems(o.exact_match_path, model.tokenizer(), format.value().kind);
    if (!items.ok()) return Fail(items.status());
    if (o.limit > 0 && static_cast<int64_t>(items.value().size()) > o.limit) {
      items.value().resize(static_cast<size_t>(o.limit));
    }
    const bool tty = ::isatty(::fileno(stderr)) != 0;
    auto r = ExactMatch(ctx, items.value(), o.max_tokens, [tty](int64_t done, int64_t total) {
      if (tty)
        std::fprintf(stderr, "\r%lld/%lld answers\x1b[K", static_cast<long long>(done), static_cast<long long>(total));
    });
    if (tty) std::fprintf(stderr, "\r\x1b[K");
    if (!r.ok()) return Fail(r.status());
    for (const std::string& miss : r.value().first_misses) std::fprintf(stderr, "miss: %s\n", miss.c_str());
    std::printf("exact match %lld/%lld = %.1f%% on %s\n", static_cast<long long>(r.value().correct),
                static_cast<long long>(r.value().n), 100.0 * r.value().Accuracy(), o.exact_match_path.c_str());
  }
  if (!o.kl_reference.empty()) {
    ModelOptions ro;
    ro.model_path = o.kl_reference;
    ro.threads = mo.threads;
    ro.ctx = ctx.n_ctx();
    auto ref = LoadModel(ro);
    if (!ref.ok()) return Fail(ref.status());
    auto ex = LoadExamples(o.kl_text, o, model, ctx.n_ctx());
    if (!ex.ok()) return Fail(ex.status());
    auto r = KlDivergence(ctx, *ref.value().ctx, ex.value());
    if (!r.ok()) return Fail(r.status());
    std::printf("KL divergence from %s: mean %.6f nats/token over %lld positions, top-1 agreement %.1f%%\n",
                o.kl_reference.c_str(), r.value().MeanKl(), static_cast<long long>(r.value().n_positions),
                100.0 * static_cast<double>(r.value().top1_agree) / static_cast<double>(r.value().n_positions));
  }
  return 0;
}

}  // namespace pocketlm::cli
