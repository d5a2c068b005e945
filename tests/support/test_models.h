// Models and adapters a test makes for itself (tools/mkmodel/random_model.h): every test that needs "a model" or
// "an adapter", rather than llama.cpp's reference values from ../shared/golden, uses these and runs in any clone.
#pragma once

#include <string>

#include "random_model.h"  // tools/mkmodel: the generator make_random_model also uses

namespace pocketlm::testing_util {

// Writes a random llama model with the options (once per process: the same options return the same file) into a
// directory of this process that is removed at exit; returns its path. On error the test fails and "" is returned.
std::string RandomModel(const mkmodel::RandomModelOptions& o = {});

// The shape of the golden llama-kq model: n_embd 256, 4 heads, 2 KV heads, every row a multiple of 256 (so every
// k-quant applies), tied output.
mkmodel::RandomModelOptions KqShape(bool f16);

// The shape of the golden llama-tiny (n_embd 64, 2 layers, 4 heads, 2 KV heads, n_ff 160, untied output) in `arch`'s
// layout ("llama" or "qwen2"); qwen2 ties its output as qwen2-tiny does. The default RandomModelOptions differ only
// in n_ff (192).
mkmodel::RandomModelOptions TinyShape(const std::string& arch = "llama");

// The same for a random LoRA adapter of `base` (a path, e.g. from RandomModel).
std::string RandomLora(const std::string& base, const mkmodel::RandomLoraOptions& o = {});

}  // namespace pocketlm::testing_util
