// `pocketlm adapter convert IN OUT` and `pocketlm adapter info PATH`: LoRA adapters between Hugging Face PEFT
// directories and llama.cpp GGUF files (src/io/peft/peft_adapter.h holds the conversion and its conventions).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "io/gguf/gguf_reader.h"
#include "io/peft/peft_adapter.h"
#include "options.h"

namespace pocketlm::cli {

namespace fs = std::filesystem;

void AdapterOptions::AddTo(CLI::App* adapter) {
  adapter->require_subcommand(1);
  convert = adapter->add_subcommand(
      "convert", "Convert a LoRA adapter: a PEFT directory to GGUF, or a GGUF adapter to a PEFT directory");
  convert->add_option("input", in, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or .gguf")
      ->required();
  convert->add_option("output", out, "GGUF file (from PEFT) or directory (from GGUF); written atomically")->required();
  convert->add_option("-m,--model", base_model,
                      "Base model GGUF: required from PEFT (architecture, head counts, shapes), and from GGUF for "
                      "llama adapters on attn_q/attn_k; checked against when given");
  convert->add_option("--base-name", base_name, "base_model_name_or_path written to adapter_config.json");
  info = adapter->add_subcommand("info", "Print an adapter's format, architecture, rank, alpha, targets and size");
  info->add_option("path", info_path, "PEFT adapter directory or GGUF adapter")->required();
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

}  // namespace

int AdapterCommand(const AdapterOptions& o) {
  std::error_code ec;
  if (o.info != nullptr && o.info->parsed()) {
    if (fs::is_directory(o.info_path, ec)) return InfoPeft(o.info_path);
    return InfoGguf(o.info_path);
  }
  if (!fs::exists(o.in, ec)) return Fail(NotFound("input '" + o.in + "' does not exist"));
  return fs::is_directory(o.in, ec) ? PeftToGguf(o) : GgufToPeft(o);
}

}  // namespace pocketlm::cli
