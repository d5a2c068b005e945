#include "io/peft/peft_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace pocketlm {

namespace {

using Json = nlohmann::json;

// Present and not null / empty: PEFT writes these keys with null, {} or [] when unused.
bool IsSet(const Json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return false;
  if (it->is_object() || it->is_array() || it->is_string()) return !it->empty();
  return true;
}

}  // namespace

double PeftLoraConfig::Scale() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

Result<PeftLoraConfig> ParsePeftLoraConfig(std::string_view json_text, const std::string& name) {
  const std::string where = "PEFT config '" + name + "'";
  Json cfg = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded()) return Corrupt(where + " is not valid JSON");
  if (!cfg.is_object()) return Corrupt(where + " is not a JSON object");

  auto peft_type = cfg.find("peft_type");
  if (peft_type == cfg.end() || !peft_type->is_string()) {
    return Corrupt(where + " has no peft_type (is it a PEFT adapter_config.json?)");
  }
  if (peft_type->get<std::string>() != "LORA") {
    return Unsupported(where + ": peft_type " + peft_type->get<std::string>() +
                       " is not supported yet (only LORA adapters convert)");
  }
  if (auto it = cfg.find("use_dora"); it != cfg.end() && it->is_boolean() && it->get<bool>()) {
    return Unsupported(where + ": use_dora is true; DoRA adapters (a learned magnitude vector) are not supported yet");
  }
  if (IsSet(cfg, "modules_to_save")) {
    return Unsupported(where + ": modules_to_save is not empty; adapters that carry fully trained modules (" +
                       cfg["modules_to_save"].dump() + ") are not supported yet");
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (IsSet(cfg, key)) {
      return Unsupported(where + ": " + key + " is not empty; per-module ranks and alphas are not supported yet");
    }
  }
  if (auto it = cfg.find("bias"); it != cfg.end() && !(it->is_string() && it->get<std::string>() == "none")) {
    return Unsupported(where + ": bias is " + it->dump() +
                       "; trained biases are not supported yet (only bias \"none\" converts)");
  }

  PeftLoraConfig c;
  auto r = cfg.find("r");
  if (r == cfg.end() || !r->is_number_integer() || r->get<int64_t>() <= 0 || r->get<int64_t>() > (1 << 20)) {
    return Corrupt(where + ": r must be a positive integer (got " + (r == cfg.end() ? "nothing" : r->dump()) + ")");
  }
  c.r = r->get<int64_t>();
  auto alpha = cfg.find("lora_alpha");
  if (alpha == cfg.end() || !alpha->is_number() || !std::isfinite(alpha->get<double>()) ||
      alpha->get<double>() == 0.0) {
    // Zero would switch the adapter off in PEFT but means "scale 1" in llama.cpp's GGUF convention.
    return Corrupt(where + ": lora_alpha must be a finite non-zero number (got " +
                   (alpha == cfg.end() ? "nothing" : alpha->dump()) + ")");
  }
  c.lora_alpha = alpha->get<double>();
  if (auto it = cfg.find("use_rslora"); it != cfg.end() && !it->is_null()) {
    if (!it->is_boolean()) return Corrupt(where + ": use_rslora is not true or false");
    c.use_rslora = it->get<bool>();
  }
  if (auto it = cfg.find("target_modules"); it != cfg.end() && !it->is_null()) {
    if (it->is_string()) {
      c.target_modules.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& m : *it) {
        if (!m.is_string()) return Corrupt(where + ": target_modules holds " + m.dump() + ", not a module name");
        c.target_modules.push_back(m.get<std::string>());
      }
    } else {
      return Corrupt(where + ": target_modules is neither a list of names nor a string");
    }
  }
  if (auto it = cfg.find("base_model_name_or_path"); it != cfg.end() && it->is_string()) {
    c.base_model_name_or_path = it->get<std::string>();
  }
  return c;
}

std::string PeftLoraConfigJson(const PeftLoraConfig& c) {
  Json j = Json::object();
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = c.r;
  // PEFT declares lora_alpha an int; write one whenever the value is integral so strict readers are happy.
  if (c.lora_alpha == std::floor(c.lora_alpha) && std::fabs(c.lora_alpha) < 1e15) {
    j["lora_alpha"] = static_cast<int64_t>(c.lora_alpha);
  } else {
    j["lora_alpha"] = c.lora_alpha;
  }
  j["target_modules"] = c.target_modules;
  j["lora_dropout"] = 0.0;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["use_rslora"] = c.use_rslora;
  j["base_model_name_or_path"] = c.base_model_name_or_path.empty() ? Json(nullptr) : Json(c.base_model_name_or_path);
  j["inference_mode"] = true;
  // Replace, not throw, on a base name that is not valid UTF-8 (it comes from the command line).
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace pocketlm
