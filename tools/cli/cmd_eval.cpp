// pocketlm eval -m MODEL [--lora ...] --perplexity FILE | --exact-match FILE.jsonl | --kl REF.gguf --text FILE
// Each measurement ends with a summary on stdout (one line; --kl on plain text: llama-perplexity --kl-divergence's
// statistics, with its labels); progress goes to stderr when it is a terminal.
#include "cmd_eval.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "train/eval.h"

namespace pocketlm::cli {

void EvalOptions::Declare(Options& o) {
  model.Declare(o);
  o.Add("--perplexity", &perplexity_path,
        "Perplexity of a text file, or of the trainable tokens of a JSONL dataset (*.jsonl: replies only)");
  o.Add("--exact-match", &exact_match_path,
        "Exact-match accuracy of greedy answers on a JSONL test split ({\"messages\"} whose last message is "
        "the expected reply, or {\"prompt\", \"completion\"})");
  o.Add("--kl", &kl_reference,
        "Reference model (GGUF): KL divergence of -m (with adapters) from it on --text. Plain text is scored as "
        "llama-perplexity --kl-divergence does (chunks of --ctx tokens, the second half of each scored) and its "
        "statistics are printed; a JSONL dataset gives the mean KL over its examples' tokens");
  o.Add("--text", &kl_text, "Text (or JSONL dataset) for --kl");
  o.Add("--chunks", &chunks, "--kl on plain text: use only the first N chunks (0: all)").Range(0, 1 << 30);
  o.Flag("--kl-llama-rounding", &kl_llama_file,
         "--kl on plain text: round the reference's log-probabilities to 16 bits as llama-perplexity's "
         "--kl-divergence-base file does, with its single-precision arithmetic (default: exact, double)");
  ChatTemplateOption(o, &chat_template);
  o.Add("--max-tokens", &max_tokens, "Longest answer generated for --exact-match").ShowDefault().Range(1, 1 << 16);
  o.Add("--limit", &limit, "Use only the first N examples / items (0: all)").Range(int64_t{0}, int64_t{1} << 40);
}

namespace {

bool IsJsonl(const std::string& path) {
  return path.size() > 6 && path.ends_with(".jsonl");
}

// A text file becomes context-sized windows; a .jsonl file a dataset (loss mask: replies / completions).
Result<std::vector<TrainExample>> LoadExamples(const std::string& path, const EvalOptions& o, const Model& model,
                                               int window) {
  std::vector<TrainExample> examples;
  if (IsJsonl(path)) {
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

// perplexity.cpp kl_divergence()'s final printout, same labels and formats (its "99.0% KLD" line printed twice there
// is printed once; 95, 90 and 0.1 % KLD are added).
void PrintKlSummary(const KlSummary& s) {
  const auto pct_label = [](double f) -> std::string {
    if (f >= 1) return "Maximum";
    if (f <= 0) return "Minimum";
    if (f == 0.5) return "Median ";
    char b[16];
    std::snprintf(b, sizeof(b), "%4.1f%%  ", 100.0 * f);
    return b;
  };
  std::printf("====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", s.ppl_q.value, s.ppl_q.unc);
  std::printf("Mean PPL(base)                : %10.6lf ± %10.6lf\n", s.ppl_base.value, s.ppl_base.unc);
  std::printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * s.ln_ppl_correlation);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", s.ln_ppl_ratio.value, s.ln_ppl_ratio.unc);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_ratio.value, s.ppl_ratio.unc);
  std::printf("Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", s.ppl_diff.value, s.ppl_diff.unc);
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6lf ± %10.6lf\n", s.kld.value, s.kld.unc);
  for (const Percentile& p : s.kld_pct) std::printf("%s KLD: %10.6f\n", pct_label(p.fraction).c_str(), p.value);
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * s.p_diff.value, 100.0 * s.p_diff.unc);
  for (const Percentile& p : s.p_diff_pct) {
    std::printf("%s Δp: %6.3lf%%\n", pct_label(p.fraction).c_str(), 100.0 * p.value);
  }
  std::printf("RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * s.p_diff_rms.value, 100.0 * s.p_diff_rms.unc);
  std::printf("Same top p: %6.3lf ± %5.3lf %%\n", 100.0 * s.same_top.value, 100.0 * s.same_top.unc);
}

// The --kl reference model, with the evaluated model's threads and context size.
Result<LoadedModel> LoadReference(const EvalOptions& o, const ModelOptions& mo, int n_ctx) {
  ModelOptions ro;
  ro.model_path = o.kl_reference;
  ro.threads = mo.threads;
  ro.ctx = n_ctx;
  return LoadModel(ro);
}

// --kl on plain text: llama-perplexity --kl-divergence's chunks (the reference's tokenization of the text, BOS as
// its vocabulary says) and statistics; both models evaluate one chunk at a time.
int KlOnText(const EvalOptions& o, Context& ctx, const ModelOptions& mo) {
  auto ref = LoadReference(o, mo, ctx.n_ctx());
  if (!ref.ok()) return Fail(ref.status());
  const Model& ref_model = *ref.value().model;
  const int n_vocab = ctx.model().config().n_vocab, ref_vocab = ref_model.config().n_vocab;
  if (n_vocab != ref_vocab) {
    return Fail(InvalidArgument("the vocabularies differ: " + o.kl_reference + " has " + std::to_string(ref_vocab) +
                                " tokens, the model " + std::to_string(n_vocab)));
  }
  std::string text;
  if (Status st = ReadTextFile(o.kl_text, &text); !st.ok()) return Fail(st);
  // perplexity.cpp: common_tokenize(ctx, params.prompt, true) (add_special, no parsing of special tokens).
  auto tokens = ref_model.tokenizer().Encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (!tokens.ok()) return Fail(tokens.status());
  auto plan = PlanKlChunks(static_cast<int64_t>(tokens.value().size()), ctx.n_ctx(), o.chunks);
  if (!plan.ok()) {
    const std::string& msg = plan.status().message();
    return Fail(InvalidArgument(msg.starts_with("the text") ? o.kl_text + ": " + msg : msg));
  }
  const KlChunks& chunks = plan.value();
  if (chunks.n_tokens < 2 * static_cast<int64_t>(chunks.n_ctx)) {
    std::fprintf(stderr, "note: llama-perplexity refuses texts shorter than two chunks (%lld tokens here, %d needed)\n",
                 static_cast<long long>(chunks.n_tokens), 2 * chunks.n_ctx);
  }
  const bool tty = ::isatty(::fileno(stderr)) != 0;
  auto r = KlDivergenceChunked(ctx, *ref.value().ctx, tokens.value(), chunks,
                               o.kl_llama_file ? KlBaseRounding::kLlamaFile : KlBaseRounding::kExact,
                               [tty](int done, int total, const KlStats& st) {
                                 if (!tty) return;
                                 // perplexity.cpp's running line of each chunk.
                                 const KlSummary s = st.Summarize(/*with_percentiles=*/false);
                                 std::fprintf(stderr,
                                              "\rchunk %d/%d: PPL(Q) %.4f, ln(PPL(Q)/PPL(base)) %.5f, KLD %.5f, "
                                              "Δp RMS %.3f%%, same top %.3f%%\x1b[K",
                                              done, total, s.ppl_q.value, s.ln_ppl_ratio.value, s.kld.value,
                                              100.0 * s.p_diff_rms.value, 100.0 * s.same_top.value);
                               });
  if (tty) std::fprintf(stderr, "\r\x1b[K");
  if (!r.ok()) return Fail(r.status());
  const KlSummary s = r.value().Summarize();
  std::printf(
      "KL divergence of %s from %s on %s: %d chunks of %d tokens (%lld tokens in the text), %lld positions "
      "scored\n\n",
      mo.model_path.c_str(), o.kl_reference.c_str(), o.kl_text.c_str(), chunks.n_chunks, chunks.n_ctx,
      static_cast<long long>(chunks.n_tokens), static_cast<long long>(s.count));
  PrintKlSummary(s);
  return 0;
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
    if (!IsJsonl(o.kl_text)) return KlOnText(o, ctx, mo);
    if (o.chunks > 0 || o.kl_llama_file) {
      return Fail(InvalidArgument("--chunks and --kl-llama-rounding apply to plain text; --text is a JSONL dataset"));
    }
    auto ref = LoadReference(o, mo, ctx.n_ctx());
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
