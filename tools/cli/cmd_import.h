// `pocketlm import DIR -o OUT.gguf [--dtype f32|f16|bf16]` and `pocketlm export GGUF DIR`: Hugging Face model
// directories <-> GGUF (src/convert/hf_convert.h holds the conversion and its conventions).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace pocketlm::cli {

struct HfCommandOptions {
  CLI::App* import = nullptr;
  CLI::App* exporter = nullptr;
  std::string dir, out, dtype = "f16";  // import
  std::string gguf, out_dir;            // export

  // Adds both subcommands to the top-level app.
  void AddTo(CLI::App* app);
  bool parsed() const { return import->parsed() || exporter->parsed(); }
};

int HfCommand(const HfCommandOptions& o);

}  // namespace pocketlm::cli
