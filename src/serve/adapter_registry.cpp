#include "serve/adapter_registry.h"

namespace pocketlm::serve {

Status AdapterRegistry::Load(const std::string& name, const std::string& path) {
  if (name.empty()) return InvalidArgument("an adapter needs a non-empty name");
  if (name == base_id_) return InvalidArgument("'" + name + "' is the base model's id; choose another adapter name");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (adapters_.count(name) != 0) {
      return InvalidArgument("an adapter named '" + name + "' is already loaded (unload it first)");
    }
  }
  // Load and check outside the lock: it reads the file, and lookups must not wait for that.
  PLM_ASSIGN_OR_RETURN(std::unique_ptr<LoraAdapter> ad, LoraAdapter::Load(path));
  PLM_RETURN_IF_ERROR(ad->CheckAgainst(base_.file()).WithContext("adapter '" + name + "' does not fit the base"));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = adapters_.emplace(name, AdapterPtr(std::move(ad)));
  if (!inserted) return InvalidArgument("an adapter named '" + name + "' was loaded meanwhile");
  return Status::Ok();
}

Status AdapterRegistry::Unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (adapters_.erase(name) == 0) return NotFound("no adapter named '" + name + "' is loaded");
  return Status::Ok();
}

AdapterPtr AdapterRegistry::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = adapters_.find(name);
  return it == adapters_.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, AdapterPtr>> AdapterRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {adapters_.begin(), adapters_.end()};
}

}  // namespace pocketlm::serve
