// The adapters a server has resident over its one base model, by name. Thread-safe: HTTP handlers resolve
// names while admin requests load and unload. Adapters are held by shared_ptr, so unloading one never frees it
// under a request that already resolved it: the request (and the context that has it active) keeps it alive.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "lora/adapter.h"
#include "model/model.h"

namespace pocketlm::serve {

using AdapterPtr = std::shared_ptr<const LoraAdapter>;

// One adapter of a request's set with its run-time scale.
struct ScaledAdapter {
  AdapterPtr adapter;
  float scale = 1.0f;
  bool operator==(const ScaledAdapter& o) const { return adapter == o.adapter && scale == o.scale; }
};
using AdapterSet = std::vector<ScaledAdapter>;

class AdapterRegistry {
 public:
  // `base_id` is reserved: no adapter may take the base model's name.
  AdapterRegistry(const Model& base, std::string base_id) : base_(base), base_id_(std::move(base_id)) {}

  // Loads `path` (mmap) and checks it against the base (architecture, tensor names and shapes); the checker's
  // message is returned on mismatch. Errors: empty or taken name (kInvalidArgument), unreadable file.
  Status Load(const std::string& name, const std::string& path);
  // kNotFound when no adapter has that name.
  Status Unload(const std::string& name);
  // nullptr when unknown.
  AdapterPtr Find(const std::string& name) const;
  // (name, adapter) pairs in name order.
  std::vector<std::pair<std::string, AdapterPtr>> List() const;

  const std::string& base_id() const { return base_id_; }

 private:
  const Model& base_;
  const std::string base_id_;
  mutable std::mutex mu_;
  std::map<std::string, AdapterPtr> adapters_;  // guarded by mu_
};

}  // namespace pocketlm::serve
