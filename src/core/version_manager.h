// Which versions of a model are in memory, and their lifecycle (TF Serving's aspired versions):
// from the version policy and the deployment it decides what should be loaded, loads and
// self-tests it, retries a rejected version once its files change, and unloads what is no longer
// wanted. Every state change goes through VersionStatus::move_to (version_state.h).
//
// It works on one ModelState at a time, under the registry's lock; `publish` shows progress
// (a version loading, self-testing) to readers while a load runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/cold_start.h"
#include "core/model_state.h"
#include "observability/metrics.h"

namespace forklift {

class VersionManager {
 public:
  VersionManager(std::filesystem::path root, MetricsRegistry& metrics,
                 std::function<void()> publish);

  // The versions `on_disk` (sorted) are what the repository holds now. Loads what the policy and
  // the deployment want, retries rejected versions whose files changed, unloads the rest. With
  // `new_versions: hold`, returns the version traffic must stay on (the caller pins it).
  std::optional<std::int64_t> sync(ModelState& model, const std::vector<std::int64_t>& on_disk);

  // Makes `version` serve (for a deployment), loading it if needed; FailedPrecondition naming
  // the reason if it cannot. A version that failed is tried again only if its files changed.
  Status ensure_serving(ModelState& model, std::int64_t version);

  // Loads a fresh copy of `version` from its files and self-tests it. A serving version keeps
  // serving its current copy until the new one passes, and keeps it if the new one fails or if
  // `accept(current, fresh)` refuses it (the caller's schema guard).
  using AcceptCopy = std::function<Status(const LoadedModel& current, const LoadedModel& fresh)>;
  Status reload(ModelState& model, std::int64_t version, const AcceptCopy& accept);

  // Takes `version` out of serving (requests holding it finish): unloading.
  void unload(ModelState& model, std::int64_t version, std::string why);
  void unload_all(ModelState& model, const std::string& why);

  // Versions unloading whose last request has let go become unloaded; true if any did.
  bool finish_unloading(ModelState& model);

  // Under a memory budget: models for which `lazy` is true get placeholders instead of loads
  // (cold_start.h) for the versions they want; a request loads one through `starter`.
  void set_cold_start(ColdStarter* starter, std::function<bool(const ModelState&)> lazy);
  bool lazy(const ModelState& model) const { return starter_ != nullptr && lazy_ && lazy_(model); }
  // Loads a version that has a placeholder, for good: true when it serves.
  bool load_cold(ModelState& model, std::int64_t version);
  // Takes a loaded version out of memory and puts a placeholder in its place (requests holding
  // it finish first; then it is freed).
  void evict(ModelState& model, std::int64_t version);

 private:
  bool try_load(ModelState& model, std::int64_t version);
  bool make_cold(ModelState& model, std::int64_t version);
  bool serving_or_loaded(ModelState& model, std::int64_t version);
  void forget_removed(ModelState& model, const std::set<std::int64_t>& disk);
  void read_policy(ModelState& model, const std::vector<std::int64_t>& on_disk);
  std::set<std::int64_t> wanted_by_policy(ModelState& model,
                                          const std::vector<std::int64_t>& on_disk,
                                          const std::set<std::int64_t>& disk);
  bool wants_load(ModelState& model, std::int64_t version);
  std::filesystem::path dir_of(const ModelState& model, std::int64_t version) const;

  std::filesystem::path root_;
  MetricsRegistry& metrics_;
  std::function<void()> publish_;
  ColdStarter* starter_ = nullptr;
  std::function<bool(const ModelState&)> lazy_;
};

}  // namespace forklift
