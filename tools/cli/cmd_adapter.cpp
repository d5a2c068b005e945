// `pocketlm adapter convert IN OUT` and `pocketlm adapter info PATH`: LoRA adapters between Hugging Face PEFT
// directories and llama.cpp GGUF files (src/io/peft/peft_adapter.h holds the conversion and its conventions).
// `pocketlm adapter merge -m BASE.gguf --lora A.gguf [--lora-scaled B.gguf 0.5 ...] -o OUT.gguf [--text FILE]
// [--min-kept 0.9] [--force] [-t N]`: the adapters folded into a copy of the base, W' = W + sum s B A, each merged
// tensor kept in its storage type (src/merge/merge.h). The merge is measured against the adapters applied at run
// time (mean KL divergence on --text, default a built-in paragraph); into a quantized base it is refused when it
// keeps less than --min-kept of the adapters' effect, unless --force. Progress on stderr (on a terminal), the
// measurement and a summary on stdout.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/peft/peft_adapter.h"
#include "merge/merge.h"
#include "options.h"

namespace pocketlm::cli {

namespace fs = std::filesystem;

void AdapterOptions::Declare(Options& adapter) {
  adapter.RequireSub();
  convert =
      adapter.Sub("convert", "Convert a LoRA adapter: a PEFT directory to GGUF, or a GGUF adapter to a PEFT directory");
  convert->Add("input", &in, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or .gguf")
      .Required();
  convert->Add("output", &out, "GGUF file (from PEFT) or directory (from GGUF); written atomically").Required();
  convert->Add("-m,--model", &base_model,
               "Base model GGUF: required from PEFT (architecture, head counts, shapes), and from GGUF for llama "
               "adapters on attn_q/attn_k; checked against when given");
  convert->Add("--base-name", &base_name, "base_model_name_or_path written to adapter_config.json");
  info = adapter.Sub("info", "Print an adapter's format, architecture, rank, alpha, targets and size");
  info->Add("path", &info_path, "PEFT adapter directory or GGUF adapter").Required();
  merge = adapter.Sub(
      "merge",
      "Merge LoRA adapters into a copy of their base (W + s B A; F32/F16/BF16 or quantized, each tensor keeps its "
      "type). Measured against the adapters applied at run time; a merge into a quantized base that keeps less than "
      "--min-kept of the adapters' effect is refused");
  merge_model.Declare(*merge, /*with_context=*/false);
  merge->Add("-o,--output", &merge_out, "Merged model (GGUF), written only when accepted").Required();
  merge->Add("--text", &merge_text,
             "Text to measure the merge on: mean KL divergence of the base and of the merged model from the base "
             "with the adapters (default: a built-in English paragraph of about 400 tokens)");
  merge
      ->Add("--min-kept", &min_kept,
            "Refuse a merge into a quantized base that keeps less than this fraction of the adapters' effect "
            "(1 - KL(ref||merged) / KL(ref||base))")
      .ShowDefault()
      .Range(0.0, 1.0);
  merge->Flag("--force", &force, "Write a requantized merge even below --min-kept");
}

namespace {

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// "blk.3.attn_q.weight" -> "attn_q", "model.layers.3.self_attn.q_proj" -> "self_attn.q_proj".
std::string TargetKind(std::string_view name) {
  for (std::string_view prefix : {"blk.", "model.layers."}) {
    if (!name.starts_with(prefix)) continue;
    std::string_view rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
    if (rest.ends_with(".weight")) rest.remove_suffix(7);
    return std::string(rest);
  }
  return std::string(name);
}

// "attn_q x2, attn_v x2", in order of first appearance.
std::string TargetSummary(const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, int>> kinds;
  for (const auto& n : names) {
    const std::string k = TargetKind(n);
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto& e) { return e.first == k; });
    if (it == kinds.end()) {
      kinds.emplace_back(k, 1);
    } else {
      ++it->second;
    }
  }
  std::string s;
  for (const auto& [k, count] : kinds) s += (s.empty() ? "" : ", ") + k + " x" + std::to_string(count);
  return s;
}

std::string Join(const std::set<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

int InfoPeft(const std::string& dir) {
  auto peft = OpenPeftAdapter(dir);
  if (!peft.ok()) return Fail(peft.status());
  const PeftLoraConfig& c = peft->config;
  std::vector<std::string> modules;
  std::set<std::string> dtypes;
  for (const auto& p : peft->pairs) {
    modules.push_back(p.module);
    dtypes.insert(std::string(StDTypeName(p.a->dtype)));
    dtypes.insert(std::string(StDTypeName(p.b->dtype)));
  }
  std::string targets;
  for (const auto& t : c.target_modules) targets += (targets.empty() ? "" : ", ") + t;
  std::printf("path: %s\nformat: PEFT LoRA (%s + %s)\n", dir.c_str(), kPeftConfigFile, kPeftWeightsFile);
  std::printf("architecture: not recorded by PEFT (taken from the base model when converting)\n");
  std::printf("base model: %s\n",
              c.base_model_name_or_path.empty() ? "(not recorded)" : c.base_model_name_or_path.c_str());
  std::printf("rank: %lld\n", static_cast<long long>(c.r));
  std::printf("alpha: %s%s (scale %s)\n", Number(c.lora_alpha).c_str(), c.use_rslora ? ", rsLoRA: alpha / sqrt(r)" : "",
              Number(c.Scale()).c_str());
  std::printf("target_modules: %s\n", targets.empty() ? "(not recorded)" : targets.c_str());
  std::printf("targets: %s\n", TargetSummary(modules).c_str());
  std::printf("tensors: %zu (%zu pairs), %s\n", peft->weights.tensors().size(), peft->pairs.size(),
              Join(dtypes).c_str());
  std::printf("size: %s\n", Bytes(static_cast<double>(peft->weights.file_size())).c_str());
  return 0;
}

int InfoGguf(const std::string& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  auto lora = ReadGgufLora(*f);
  if (!lora.ok()) return Fail(lora.status());
  std::vector<std::string> targets;
  std::set<int64_t> ranks;
  std::set<std::string> types;
  for (const auto& p : lora->pairs) {
    targets.push_back(p.target);
    ranks.insert(p.rank);
    types.insert(std::string(DTypeName(p.type_a)));
    types.insert(std::string(DTypeName(p.type_b)));
  }
  std::string rank_list;
  for (int64_t r : ranks) rank_list += (rank_list.empty() ? "" : ", ") + std::to_string(r);
  std::printf("path: %s\nformat: GGUF LoRA adapter (llama.cpp)\narchitecture: %s\n", path.c_str(), lora->arch.c_str());
  std::printf("%s: %s\n", ranks.size() == 1 ? "rank" : "ranks", rank_list.c_str());
  if (lora->alpha != 0.0f) {
    std::printf("alpha: %s (scale alpha / rank", Number(lora->alpha).c_str());
    if (ranks.size() == 1) std::printf(" = %s", Number(lora->alpha / static_cast<double>(*ranks.begin())).c_str());
    std::printf(")\n");
  } else {
    std::printf("alpha: not set (scale 1)\n");
  }
  std::printf("targets: %s\n", TargetSummary(targets).c_str());
  std::printf("tensors: %zu (%zu pairs), %s\n", f->tensors().size(), lora->pairs.size(), Join(types).c_str());
  std::printf("size: %s\n", Bytes(static_cast<double>(f->file_size())).c_str());
  return 0;
}

int PeftToGguf(const AdapterOptions& o) {
  if (o.base_model.empty()) {
    return Fail(
        InvalidArgument("converting a PEFT adapter to GGUF needs its base model: -m BASE.gguf (PEFT does "
                        "not record the architecture, and llama's q/k rows depend on the head counts)"));
  }
  if (!o.base_name.empty()) return Fail(InvalidArgument("--base-name only applies when writing a PEFT adapter"));
  std::error_code ec;
  if (fs::is_directory(o.out, ec)) {
    return Fail(InvalidArgument("output '" + o.out + "' is a directory; PEFT -> GGUF writes a .gguf file"));
  }
  auto peft = OpenPeftAdapter(o.in);
  if (!peft.ok()) return Fail(peft.status());
  auto base = GgufFile::Open(o.base_model);
  if (!base.ok()) return Fail(base.status());
  auto lora = PeftToLora(*peft, *base);
  if (!lora.ok()) return Fail(lora.status());
  if (Status s = WriteGgufLora(*lora, o.out); !s.ok()) return Fail(s);
  std::printf("wrote %s: GGUF LoRA adapter for %s, %zu pairs, rank %lld, alpha %s\n", o.out.c_str(), lora->arch.c_str(),
              lora->pairs.size(), static_cast<long long>(peft->config.r), Number(lora->alpha).c_str());
  return 0;
}

int GgufToPeft(const AdapterOptions& o) {
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec)) {
    return Fail(InvalidArgument("output '" + o.out + "' is a file; GGUF -> PEFT writes a directory"));
  }
  auto f = GgufFile::Open(o.in);
  if (!f.ok()) return Fail(f.status());
  auto lora = ReadGgufLora(*f);
  if (!lora.ok()) return Fail(lora.status());
  Result<GgufFile> base = InvalidArgument("no base model");
  if (!o.base_model.empty()) {
    base = GgufFile::Open(o.base_model);
    if (!base.ok()) return Fail(base.status());
  }
  if (Status s = WritePeftAdapter(*lora, base.ok() ? &base.value() : nullptr, o.out, o.base_name); !s.ok()) {
    return Fail(s);
  }
  std::printf("wrote %s: PEFT LoRA adapter (%s + %s), %zu pairs\n", o.out.c_str(), kPeftConfigFile, kPeftWeightsFile,
              lora->pairs.size());
  return 0;
}

std::string TypeNames(const std::vector<DType>& types, bool quantized_only) {
  std::string s;
  for (DType t : types) {
    if (quantized_only && !GetDTypeInfo(t).quantized) continue;
    s += (s.empty() ? "" : ", ") + std::string(DTypeName(t));
  }
  return s;
}

void PrintMeasurement(const MergeSummary& s, const AdapterOptions& o) {
  const MergeQuality& q = s.quality;
  std::printf("KL(base+adapters || base):   %.6f nats/token, top-1 agreement %5.1f%%  (the adapters' effect)\n",
              q.kl_base, 100.0 * q.top1_base);
  std::printf("KL(base+adapters || merged): %.6f nats/token, top-1 agreement %5.1f%%  (what merging lost)\n",
              q.kl_merged, 100.0 * q.top1_merged);
  std::printf("measured over %lld positions of %s\n", static_cast<long long>(q.n_positions),
              o.merge_text.empty() ? "the built-in text" : o.merge_text.c_str());
  if (q.no_effect) {
    std::printf("kept: %.1f%% (the adapters do not measurably change this text's predictions)\n", 100.0 * q.kept);
  } else if (s.requantized) {
    std::printf("kept: %.1f%% of the adapters' effect through requantization to %s (minimum %.1f%%)\n", 100.0 * q.kept,
                TypeNames(s.merged_types, true).c_str(), 100.0 * o.min_kept);
  } else {
    std::printf("kept: %.1f%% of the adapters' effect (%s: rounding only, never refused)\n", 100.0 * q.kept,
                TypeNames(s.merged_types, false).c_str());
  }
  std::fflush(stdout);
}

int MergeCommand(const AdapterOptions& o) {
  const ModelOptions& m = o.merge_model;
  Result<LoadedAdapters> loaded = LoadAdapters(m);
  if (!loaded.ok()) return Fail(loaded.status());
  const std::vector<ActiveLora>& active = loaded.value().active;
  if (active.empty()) {
    return Fail(InvalidArgument("nothing to merge: give --lora A.gguf or --lora-scaled A.gguf SCALE"));
  }

  MergeOptions mo;
  mo.n_threads = m.threads;
  mo.min_kept = o.min_kept;
  mo.force = o.force;
  if (!o.merge_text.empty()) {
    if (Status s = ReadTextFile(o.merge_text, &mo.text); !s.ok()) return Fail(s);
  }
  const bool tty = ::isatty(::fileno(stderr)) != 0;
  auto last_draw = std::chrono::steady_clock::time_point{};
  bool bar_shown = false;
  auto clear_bar = [&] {
    if (bar_shown) std::fprintf(stderr, "\r\x1b[K");
    bar_shown = false;
  };
  // The measurement is printed as soon as it is known, before the merge is accepted or refused.
  auto progress = [&](const MergeProgress& p) {
    if (p.stage == MergeProgress::Stage::kMeasured) {
      clear_bar();
      PrintMeasurement(*p.summary, o);
      return;
    }
    if (!tty) return;
    if (p.stage == MergeProgress::Stage::kMeasuring) {
      std::fprintf(stderr, "\rmeasuring the merge against the adapters applied at run time...\x1b[K");
      bar_shown = true;
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!p.tensor_done && now - last_draw < std::chrono::milliseconds(100)) return;
    last_draw = now;
    const double frac = p.bytes_total ? static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 1.0;
    std::fprintf(stderr, "\r%zu/%zu tensors  %3d%%  %s%s\x1b[K", p.tensor_index + (p.tensor_done ? 1 : 0), p.n_tensors,
                 static_cast<int>(frac * 100.0), std::string(p.tensor_name).c_str(), p.merged ? " (merging)" : "");
    bar_shown = true;
  };
  auto r = MergeAdapters(m.model_path, active, o.merge_out, mo, progress);
  clear_bar();
  if (!r.ok()) return Fail(r.status());
  const MergeSummary& s = r.value();
  if (s.below_min_kept) {
    std::fprintf(stderr,
                 "warning: kept %.1f%% of the adapters' effect, below --min-kept %.1f%%: written because of "
                 "--force\n",
                 100.0 * s.quality.kept, 100.0 * o.min_kept);
  }
  std::printf("wrote %s: %zu of %zu tensors merged (%s) from %zu adapter(s), %s, in %.1f s\n", o.merge_out.c_str(),
              s.n_merged, s.n_tensors, TypeNames(s.merged_types, false).c_str(), active.size(),
              Bytes(static_cast<double>(s.file_bytes)).c_str(), s.seconds);
  return 0;
}

}  // namespace

int AdapterCommand(const AdapterOptions& o) {
  std::error_code ec;
  if (o.merge && o.merge->Parsed()) return MergeCommand(o);
  if (o.info && o.info->Parsed()) {
    if (fs::is_directory(o.info_path, ec)) return InfoPeft(o.info_path);
    return InfoGguf(o.info_path);
  }
  if (!fs::exists(o.in, ec)) return Fail(NotFound("input '" + o.in + "' does not exist"));
  return fs::is_directory(o.in, ec) ? PeftToGguf(o) : GgufToPeft(o);
}

}  // namespace pocketlm::cli
