#include "cmd_import.h"

#include <cstdio>

#include "convert/hf_convert.h"
#include "options.h"

namespace pocketlm::cli {

void HfCommandOptions::AddTo(CLI::App* app) {
  import = app->add_subcommand(
      "import", "Convert a Hugging Face model directory (Llama, Qwen2, Phi-3, Gemma-2; safetensors) to GGUF");
  import->add_option("dir", dir, "Directory with config.json, *.safetensors and tokenizer.json")->required();
  import->add_option("-o,--output", out, "GGUF file to write (atomically)")->required();
  import->add_option("--dtype", dtype, "Type of the weight matrices; norms and biases stay f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  exporter = app->add_subcommand(
      "export", "Write an F32/F16/BF16 GGUF model as a Hugging Face directory (safetensors, config, tokenizer)");
  exporter->add_option("model", gguf, "GGUF model")->required();
  exporter->add_option("dir", out_dir, "Output directory (created if missing)")->required();
}

int HfCommand(const HfCommandOptions& o) {
  if (o.import->parsed()) {
    auto type = convert::ParseOutType(o.dtype);
    if (!type.ok()) return Fail(type.status());
    auto s = convert::ImportHfModel({o.dir, o.out, *type});
    if (!s.ok()) return Fail(s.status());
    std::printf(
        "imported %s (%s): %zu tensors from %zu safetensors file(s), %.2f MiB of %s weights, vocab %lld -> %s\n",
        s->hf_class.c_str(), s->arch.c_str(), s->n_tensors, s->n_shards,
        static_cast<double>(s->bytes_out) / (1024.0 * 1024.0), o.dtype.c_str(), static_cast<long long>(s->n_vocab),
        o.out.c_str());
    return 0;
  }
  auto s = convert::ExportHfModel(o.gguf, o.out_dir);
  if (!s.ok()) return Fail(s.status());
  std::printf("exported %s: %zu tensors -> %s\n", s->hf_class.c_str(), s->n_tensors, o.out_dir.c_str());
  return 0;
}

}  // namespace pocketlm::cli
