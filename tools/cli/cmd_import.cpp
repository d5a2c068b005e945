#include "cmd_import.h"

#include <cstdio>

#include "convert/hf_convert.h"
#include "options.h"

namespace pocketlm::cli {

void ImportOptions::Declare(Options& o) {
  o.Add("dir", &dir, "Directory with config.json, *.safetensors and tokenizer.json").Required();
  o.Add("-o,--output", &out, "GGUF file to write (atomically)").Required();
  o.Add("--dtype", &dtype, "Type of the weight matrices; norms and biases stay f32")
      .ShowDefault()
      .OneOf({"f32", "f16", "bf16"});
}

void ExportOptions::Declare(Options& o) {
  o.Add("model", &gguf, "GGUF model").Required();
  o.Add("dir", &out_dir, "Output directory (created if missing)").Required();
}

int ImportCommand(const ImportOptions& o) {
  auto type = convert::ParseOutType(o.dtype);
  if (!type.ok()) return Fail(type.status());
  auto s = convert::ImportHfModel({o.dir, o.out, *type});
  if (!s.ok()) return Fail(s.status());
  std::printf("imported %s (%s): %zu tensors from %zu safetensors file(s), %.2f MiB of %s weights, vocab %lld -> %s\n",
              s->hf_class.c_str(), s->arch.c_str(), s->n_tensors, s->n_shards,
              static_cast<double>(s->bytes_out) / (1024.0 * 1024.0), o.dtype.c_str(),
              static_cast<long long>(s->n_vocab), o.out.c_str());
  return 0;
}

int ExportCommand(const ExportOptions& o) {
  auto s = convert::ExportHfModel(o.gguf, o.out_dir);
  if (!s.ok()) return Fail(s.status());
  std::printf("exported %s: %zu tensors -> %s\n", s->hf_class.c_str(), s->n_tensors, o.out_dir.c_str());
  return 0;
}

}  // namespace pocketlm::cli
