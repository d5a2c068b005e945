// The adapters a server knows over its one base model, by name. Thread-safe: HTTP handlers resolve names while
// admin requests load and unload. Adapters are held by shared_ptr, so unloading one never frees it under a
// request that already resolved it: the request (and the context that has it active) keeps it alive.
//
// Memory budget (optional): when the resident adapters' bytes exceed it, the least recently used ones are
// evicted (their memory goes once no request holds them); the name stays registered, and the next request for
// it loads the file again (a few ms: mmap plus the check against the base), evicting others in turn.
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
  // `budget_bytes`: 0 = no limit.
  AdapterRegistry(const Model& base, std::string base_id, size_t budget_bytes = 0)
      : base_(base), base_id_(std::move(base_id)), budget_(budget_bytes) {}

  // Whether Unload may remove an adapter: the ones the server started with stay for its lifetime.
  enum class Removal { kAllowed, kPinned };
  // Loads `path` (mmap) and checks it against the base (architecture, tensor names and shapes); the checker's
  // message is returned on mismatch. Errors: a name that is empty, taken, longer than 128 bytes or holds other
  // than printable ASCII without spaces (it is logged and echoed) (kInvalidArgument); an unreadable file.
  Status Load(const std::string& name, const std::string& path, Removal removal = Removal::kAllowed);
  // kNotFound when no adapter has that name; kInvalidArgument for a pinned one.
  Status Unload(const std::string& name);
  // nullptr when unknown, or when an evicted adapter's file no longer loads or no longer resolves to the file it was
  // loaded from (a symbolic link swapped in meanwhile). Marks the adapter as just used.
  AdapterPtr Find(const std::string& name) const;
  // Registered names in order, with their adapter (nullptr while evicted).
  std::vector<std::pair<std::string, AdapterPtr>> List() const;
  // Bytes of the resident adapters (LoraAdapter::ResidentBytes).
  size_t resident_bytes() const;

  const std::string& base_id() const { return base_id_; }

 private:
  struct Entry {
    std::string path;
    std::string resolved;  // `path` with every symbolic link resolved, when it was loaded
    AdapterPtr adapter;    // nullptr while evicted
    uint64_t last_used = 0;
    Removal removal = Removal::kAllowed;
  };
  // Loads and checks `path` for adapter `name`.
  Result<AdapterPtr> LoadChecked(const std::string& name, const std::string& path) const;
  // Evicts least recently used adapters other than `keep` until the resident bytes fit the budget. Holds mu_.
  void EvictLocked(const std::string& keep) const;

  const Model& base_;
  const std::string base_id_;
  const size_t budget_;
  mutable std::mutex mu_;
  // Find is logically const: it only changes which adapters are resident and when each was last used.
  mutable std::map<std::string, Entry> adapters_;  // guarded by mu_
  mutable uint64_t clock_ = 0;                     // guarded by mu_
};

}  // namespace pocketlm::serve
