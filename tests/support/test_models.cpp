#include "test_models.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>

namespace pocketlm::testing_util {
namespace {

// Made files by a key spelling out every option, in a mkdtemp directory removed when the process exits.
class ModelCache {
 public:
  ~ModelCache() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The path for `key`; `make(path)` writes it the first time.
  template <typename Make>
  std::string Get(const std::string& key, Make make) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = files_.find(key); it != files_.end()) return it->second;
    if (dir_.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "plm-models-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) {
        ADD_FAILURE() << "mkdtemp failed";
        return "";
      }
      dir_ = tmpl;
    }
    const std::string path = (dir_ / ("m" + std::to_string(files_.size()) + ".gguf")).string();
    const Status st = make(path);
    if (!st.ok()) {
      ADD_FAILURE() << "could not make " << key << ": " << st.message();
      return "";
    }
    files_.emplace(key, path);
    return path;
  }

 private:
  std::mutex mu_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> files_;
};

ModelCache& Cache() {
  static ModelCache cache;
  return cache;
}

}  // namespace

std::string RandomModel(const mkmodel::RandomModelOptions& o) {
  const std::string key = o.arch + " model seed " + std::to_string(o.seed) + " layers " + std::to_string(o.n_layer) +
                          " embd " + std::to_string(o.n_embd) + " heads " + std::to_string(o.n_head) + "/" +
                          std::to_string(o.n_head_kv) + " ff " + std::to_string(o.n_ff) + " ctx " +
                          std::to_string(o.n_ctx) + " std " + std::to_string(o.init_std) + (o.f16 ? " f16" : "") +
                          (o.tied ? " tied" : "") + " vocab '" + o.vocab_path + "' name '" + o.name + "'";
  return Cache().Get(key, [&](const std::string& path) { return mkmodel::WriteRandomModel(path, o).status(); });
}

mkmodel::RandomModelOptions KqShape(bool f16) {
  mkmodel::RandomModelOptions o;
  o.seed = 2;
  o.n_embd = 256;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 768;
  o.f16 = f16;
  o.tied = true;
  return o;
}

mkmodel::RandomModelOptions TinyShape(const std::string& arch) {
  mkmodel::RandomModelOptions o;
  o.arch = arch;
  o.n_ff = 160;
  o.tied = arch == "qwen2";
  return o;
}

std::string RandomLora(const std::string& base, const mkmodel::RandomLoraOptions& o) {
  std::string key = "lora of '" + base + "' seed " + std::to_string(o.seed) + " rank " + std::to_string(o.rank) +
                    " alpha " + std::to_string(o.alpha) + " std " + std::to_string(o.std) + " arch '" + o.architecture +
                    "' targets";
  for (const std::string& t : o.targets) key += " " + t;
  return Cache().Get(key, [&](const std::string& path) { return mkmodel::WriteRandomLora(base, path, o).status(); });
}

}  // namespace pocketlm::testing_util
