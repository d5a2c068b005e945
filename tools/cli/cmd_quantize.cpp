// pocketlm quantize IN OUT --type PRESET: progress on stderr (a bar on a terminal, one line per tensor
// otherwise), the size summary on stdout.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "options.h"
#include "quantize/quantize_model.h"

namespace pocketlm::cli {

namespace {

using Clock = std::chrono::steady_clock;

double MiB(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

std::string Duration(double s) {
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

struct ProgressView {
  bool tty = false;
  Clock::time_point start = Clock::now();
  Clock::time_point last_draw{};
  bool bar_shown = false;
};

void DrawBar(ProgressView& v, const quantize::QuantizeProgress& p) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - v.start).count();
  const double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 1.0;
  const std::string eta = frac > 0.0 && frac < 1.0 ? Duration(elapsed * (1.0 - frac) / frac) : "0:00";
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  const size_t done = p.tensor_index + (p.tensor_done ? 1 : 0);
  std::fprintf(stderr, "\r[%s] %zu/%zu tensors  %.1f/%.1f MiB  %3d%%  ETA %s  %s\x1b[K", bar.c_str(), done, p.n_tensors,
               MiB(p.bytes_done), MiB(p.bytes_total), static_cast<int>(frac * 100.0), eta.c_str(),
               p.tensor->name.c_str());
  v.bar_shown = true;
}

void OnProgress(const quantize::QuantizeProgress& p, void* user) {
  auto& v = *static_cast<ProgressView*>(user);
  const quantize::TensorPlan& t = *p.tensor;
  if (p.tensor_done && t.fallback) {
    if (v.bar_shown) std::fprintf(stderr, "\r\x1b[K");
    std::fprintf(stderr, "warning: %s: %s\n", t.name.c_str(), t.note.c_str());
  }
  if (v.tty) {
    const auto now = Clock::now();
    const bool last = p.tensor_done && p.tensor_index + 1 == p.n_tensors;
    if (last || now - v.last_draw > std::chrono::milliseconds(100)) {
      DrawBar(v, p);
      v.last_draw = now;
    }
    if (last) std::fprintf(stderr, "\n");
    return;
  }
  if (!p.tensor_done) return;
  std::fprintf(stderr, "[%4zu/%4zu] %-36s %-6s -> %-6s %9.3f MiB -> %9.3f MiB%s\n", p.tensor_index + 1, p.n_tensors,
               t.name.c_str(), std::string(DTypeName(t.from)).c_str(), std::string(DTypeName(t.to)).c_str(),
               MiB(t.bytes_in), MiB(t.bytes_out), t.convert ? "" : " (copied)");
}

Status ParseOverride(const std::string& option, const std::string& name, std::optional<DType>* out) {
  if (name.empty()) return Status::Ok();
  *out = quantize::ParseDTypeName(name);
  if (!*out) return InvalidArgument(option + " '" + name + "' is not a tensor type (e.g. q8_0, q6_K, f16)");
  return Status::Ok();
}

}  // namespace

int QuantizeCommand(const QuantizeOptions& q) {
  const std::string& out = q.out;
  quantize::QuantizeOptions o;
  o.preset = q.type;
  o.n_threads = q.threads;
  o.allow_requantize = q.allow_requantize;
  o.pure = q.pure;
  if (Status s = ParseOverride("--output-tensor-type", q.output_type, &o.overrides.output); !s.ok()) return Fail(s);
  if (Status s = ParseOverride("--token-embedding-type", q.embd_type, &o.overrides.token_embd); !s.ok()) {
    return Fail(s);
  }

  quantize::ImportanceMatrix imatrix;
  if (!q.imatrix.empty()) {
    auto m = quantize::ReadImatrix(q.imatrix);
    if (!m.ok()) return Fail(m.status());
    imatrix = std::move(m.value());
    o.imatrix = &imatrix;
    o.imatrix_name = q.imatrix;
    std::fprintf(stderr, "importance matrix %s: %zu entries from %d chunks of %s\n", q.imatrix.c_str(),
                 imatrix.entries.size(), imatrix.chunk_count,
                 imatrix.dataset.empty() ? "an unnamed text" : imatrix.dataset.c_str());
  } else if (const quantize::Preset* p = quantize::FindPreset(q.type); p != nullptr && PresetNeedsImatrix(*p)) {
    // llama-quantize refuses these presets without a matrix: at 1-2 bits, unweighted rounding ruins the model.
    return Fail(InvalidArgument(std::string(p->name) +
                                " needs an importance matrix: compute one with `pocketlm calibrate -m " + q.in +
                                " --text CALIBRATION.txt -o model.imatrix`, then pass --imatrix model.imatrix"));
  }

  ProgressView view;
  view.tty = ::isatty(::fileno(stderr)) != 0;
  auto r = quantize::QuantizeModel(q.in, out, o, OnProgress, &view);
  if (!r.ok()) {
    if (view.bar_shown) std::fprintf(stderr, "\n");
    return Fail(r.status());
  }
  const quantize::QuantizeSummary& s = *r;
  std::fprintf(stderr, "wrote %s: %s (general.file_type %u), %zu tensors, %zu converted, %.2f MiB on disk\n",
               out.c_str(), std::string(s.preset->name).c_str(), static_cast<unsigned>(s.preset->ftype), s.n_tensors,
               s.n_converted, MiB(s.file_bytes_out));
  if (s.n_fallback > 0) {
    std::fprintf(stderr,
                 "warning: %zu tensor(s) used a fallback type: their rows do not split into the preset's blocks\n",
                 s.n_fallback);
  }
  std::printf("input %.2f MiB (%.2f bits/weight) -> output %.2f MiB (%.2f bits/weight) in %.1f s\n", MiB(s.bytes_in),
              s.bits_per_weight_in(), MiB(s.bytes_out), s.bits_per_weight_out(), s.seconds);
  return 0;
}

}  // namespace pocketlm::cli
