// adapter_config.json of a Hugging Face PEFT LoRA adapter (peft/tuners/lora/config.py, LoraConfig): the subset the
// GGUF conversion needs, and a writer that produces a config PEFT loads.
//
// PEFT applies y = W x + s * B (A x) with s = lora_alpha / r, or lora_alpha / sqrt(r) when use_rslora is set
// (Kalajdzievski 2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocketlm {

struct PeftLoraConfig {
  int64_t r = 0;
  double lora_alpha = 0;
  bool use_rslora = false;
  // The list form; a single string (PEFT's regex form, or "all-linear") is kept as the one element.
  std::vector<std::string> target_modules;
  std::string base_model_name_or_path;  // empty: null or absent

  // The multiplier PEFT applies to B A.
  double Scale() const;
};

// Parses the JSON text of adapter_config.json (`name` appears in errors). Refuses, each with its own message, what
// the conversion cannot represent: a peft_type other than LORA, bias other than "none", non-empty
// modules_to_save, use_dora, and non-empty rank_pattern / alpha_pattern (per-module ranks or alphas).
Result<PeftLoraConfig> ParsePeftLoraConfig(std::string_view json_text, const std::string& name);

// A config PEFT's PeftModel.from_pretrained loads: peft_type LORA, task_type CAUSAL_LM, r, lora_alpha,
// target_modules, lora_dropout 0, bias "none", fan_in_fan_out false, use_rslora, base_model_name_or_path (null
// when empty), inference_mode true. Only keys every PEFT release since 0.7 knows, so older releases load it too.
std::string PeftLoraConfigJson(const PeftLoraConfig& c);

}  // namespace pocketlm
