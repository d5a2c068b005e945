#include "serve/adapter_registry.h"

#include <algorithm>
#include <filesystem>

#include "base/utf8.h"

namespace pocketlm::serve {

Result<AdapterPtr> AdapterRegistry::LoadChecked(const std::string& name, const std::string& path) const {
  PLM_ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> ad, LoraAdapter::Load(path));
  PLM_RETURN_IF_ERROR(
      ad->CheckAgainst(base_.file(), &base_.lineage()).WithContext("adapter '" + name + "' does not fit the base"));
  return AdapterPtr(std::move(ad));
}

void AdapterRegistry::EvictLocked(const std::string& keep) const {
  if (budget_ == 0) return;
  for (;;) {
    size_t total = 0;
    Entry* lru = nullptr;
    for (auto& [name, e] : adapters_) {
      if (e.adapter == nullptr) continue;
      total += e.adapter->ResidentBytes();
      if (name != keep && (lru == nullptr || e.last_used < lru->last_used)) lru = &e;
    }
    if (total <= budget_ || lru == nullptr) return;  // an adapter larger than the budget alone stays
    lru->adapter.reset();
  }
}

namespace {

// Names reach the server's log and every client's model list: printable ASCII only, so that no name can forge a log
// line or a terminal escape (OpenAI's model ids fit: letters, digits and - _ . : /).
Status ValidateName(const std::string& name) {
  if (name.empty()) return InvalidArgument("an adapter needs a non-empty name");
  if (name.size() > 128) return InvalidArgument("an adapter name has at most 128 bytes");
  if (!IsVisibleAscii(name)) {
    return InvalidArgument("an adapter name holds printable ASCII without spaces only (letters, digits, - _ . : /)");
  }
  return Status::Ok();
}

std::string Resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(path, ec);
  return ec ? std::string() : p.string();
}

}  // namespace

Status AdapterRegistry::Load(const std::string& name, const std::string& path, Removal removal) {
  PLM_RETURN_IF_ERROR(ValidateName(name));
  if (name == base_id_) return InvalidArgument("'" + name + "' is the base model's id; choose another adapter name");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (adapters_.count(name) != 0) {
      return InvalidArgument("an adapter named '" + name + "' is already loaded (unload it first)");
    }
  }
  // Load and check outside the lock: it reads the file, and lookups must not wait for that.
  const std::string resolved = Resolved(path);
  PLM_ASSIGN_OR_RETURN(AdapterPtr ad, LoadChecked(name, path));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = adapters_.emplace(name, Entry{path, resolved, std::move(ad), ++clock_, removal});
  if (!inserted) return InvalidArgument("an adapter named '" + name + "' was loaded meanwhile");
  EvictLocked(name);
  return Status::Ok();
}

Status AdapterRegistry::Unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = adapters_.find(name);
  if (it == adapters_.end()) return NotFound("no adapter named '" + name + "' is loaded");
  if (it->second.removal == Removal::kPinned) {
    return InvalidArgument("adapter '" + name + "' was loaded when the server started and stays loaded");
  }
  adapters_.erase(it);
  return Status::Ok();
}

AdapterPtr AdapterRegistry::Find(const std::string& name) const {
  std::string path, resolved;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) return nullptr;
    it->second.last_used = ++clock_;
    if (it->second.adapter != nullptr) return it->second.adapter;
    path = it->second.path;
    resolved = it->second.resolved;
  }
  // Evicted: load it again outside the lock (two requests may both load it; the first to finish wins), from the
  // same file only: the admin API checked where the path led when it was loaded, and a link swapped in since must
  // not lead the server elsewhere.
  if (Resolved(path) != resolved) return nullptr;
  Result<AdapterPtr> ad = LoadChecked(name, path);
  if (!ad.ok()) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = adapters_.find(name);
  if (it == adapters_.end() || it->second.path != path) return *ad;  // unloaded or replaced meanwhile
  if (it->second.adapter == nullptr) it->second.adapter = *ad;
  EvictLocked(name);
  return it->second.adapter;
}

std::vector<std::pair<std::string, AdapterPtr>> AdapterRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, AdapterPtr>> out;
  for (const auto& [name, e] : adapters_) out.emplace_back(name, e.adapter);
  return out;
}

size_t AdapterRegistry::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [name, e] : adapters_) n += e.adapter != nullptr ? e.adapter->ResidentBytes() : 0;
  return n;
}

}  // namespace pocketlm::serve
