// pocketlm calibrate -m MODEL (--text FILE | --data FILE.jsonl) -o OUT [--ctx N] [--chunks N]
// Progress on stderr (a bar on a terminal), one summary line on stdout.
#include "cmd_calibrate.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "base/atomic_file.h"
#include "calibrate/calibrate.h"
#include "train/data/dataset.h"

namespace pocketlm::cli {

void CalibrateCliOptions::Declare(Options& o) {
  model.Declare(o, /*with_context=*/false);
  model.ctx = 512;  // llama-imatrix's default
  ContextOption(o, &model.ctx, "Tokens per chunk; every chunk is evaluated from an empty cache (llama-imatrix's -c)")
      .ShowDefault();
  o.Add("--text", &text_path, "Calibration text (plain text; cut into chunks of --ctx tokens)");
  o.Add("--data", &data_path, "Calibration dataset (JSONL chat or prompt/completion lines, rendered and joined)");
  o.Add("-o,--output", &out_path, "Importance matrix to write (llama.cpp's binary imatrix format)").Required();
  o.Add("--chunks", &chunks, "Use at most N chunks (0: all)").Range(0, 1 << 30);
  ChatTemplateOption(o, &chat_template);
}

namespace {

Result<std::vector<int32_t>> CalibrationTokens(const CalibrateCliOptions& o, const Model& model) {
  if (!o.text_path.empty()) {
    std::string text;
    PLM_RETURN_IF_ERROR(ReadTextFile(o.text_path, &text));
    // As llama-imatrix: special tokens added (BOS), special-token text not parsed.
    return model.tokenizer().Encode(text, /*add_special=*/true, /*parse_special=*/false);
  }
  std::string note;
  PLM_ASSIGN_OR_RETURN(const ChatFormat format,
                       ChooseChatTemplate(model, o.chat_template, MissingMarkers::kRefuse, &note));
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
  DatasetOptions d;
  d.chat_template = format.kind;
  PLM_ASSIGN_OR_RETURN(Dataset data, LoadJsonlDataset(o.data_path, model.tokenizer(), d));
  std::vector<int32_t> tokens;
  for (const TrainExample& ex : data.examples) tokens.insert(tokens.end(), ex.tokens.begin(), ex.tokens.end());
  return tokens;
}

}  // namespace

int CalibrateCommand(const CalibrateCliOptions& o) {
  if (o.text_path.empty() == o.data_path.empty()) {
    return Fail(InvalidArgument("give the calibration text as --text FILE or --data FILE.jsonl (one of them)"));
  }
  ModelOptions mo = o.model;
  if (mo.ctx < 16) {
    // llama-imatrix ignores products of fewer than 16 tokens: a shorter chunk would collect nothing.
    return Fail(InvalidArgument("--ctx " + std::to_string(mo.ctx) + " is too short: chunks need at least 16 tokens"));
  }
  mo.n_batch = mo.ctx;  // one forward pass per chunk, as llama-imatrix evaluates it
  // An output that cannot be written fails now rather than after the calibration (minutes to hours on a large model).
  if (std::filesystem::is_directory(o.out_path)) {
    return Fail(InvalidArgument("--output '" + o.out_path + "' is a directory"));
  }
  if (auto probe = AtomicFileWriter::Create(o.out_path); !probe.ok()) return Fail(probe.status());
  auto lm = LoadModel(mo);
  if (!lm.ok()) return Fail(lm.status());
  auto tokens = CalibrationTokens(o, *lm.value().model);
  if (!tokens.ok()) return Fail(tokens.status());

  CalibrateOptions co;
  co.max_chunks = o.chunks;
  co.dataset = std::filesystem::path(o.text_path.empty() ? o.data_path : o.text_path).filename().string();
  const bool tty = ::isatty(::fileno(stderr)) != 0;
  const auto start = std::chrono::steady_clock::now();
  auto progress = [&](int done, int total) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = s / done * (total - done);
    if (tty) {
      constexpr int kWidth = 24;
      const int filled = done * kWidth / total;
      std::fprintf(stderr, "\r[%s%s] %d/%d chunks  %.0f s  ETA %.0f s\x1b[K", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), done, total, s, eta);
      if (done == total) std::fprintf(stderr, "\n");
    } else if (done == total || done % 10 == 0) {
      std::fprintf(stderr, "%d/%d chunks, %.0f s\n", done, total, s);
    }
  };
  auto m = Calibrate(*lm.value().ctx, tokens.value(), co, progress);
  if (!m.ok()) return Fail(m.status());
  if (Status s = quantize::WriteImatrix(o.out_path, m.value()); !s.ok()) return Fail(s);
  std::printf("wrote %s: %zu matrices from %d chunks of %d tokens (%zu tokens in %s)\n", o.out_path.c_str(),
              m.value().entries.size(), m.value().chunk_count, mo.ctx, tokens.value().size(), co.dataset.c_str());
  return 0;
}

}  // namespace pocketlm::cli
