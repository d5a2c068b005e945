// `pocketlm import DIR -o OUT.gguf [--dtype f32|f16|bf16]` and `pocketlm export GGUF DIR`: Hugging Face model
// directories <-> GGUF (src/convert/hf_convert.h holds the conversion and its conventions).
#pragma once

#include <string>

#include "option_table.h"

namespace pocketlm::cli {

struct ImportOptions {
  std::string dir, out, dtype = "f16";
  void Declare(Options& o);
};
int ImportCommand(const ImportOptions& o);

struct ExportOptions {
  std::string gguf, out_dir;
  void Declare(Options& o);
};
int ExportCommand(const ExportOptions& o);

}  // namespace pocketlm::cli
