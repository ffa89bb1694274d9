// What the registry knows about each model id, published to readers as an immutable snapshot.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/control_state.h"
#include "core/manifest.h"
#include "core/version_loader.h"
#include "core/version_state.h"

namespace forklift {

struct ModelState {
  std::string model_id;
  VersionPolicy policy;  // from the newest version whose manifest parses
  bool hold_new_versions = false;
  bool pinned = false;  // `memory: pinned` in the newest version's model.yaml (memory budget)
  // The ready versions, by number: what requests can be routed to.
  std::map<std::int64_t, std::shared_ptr<const LoadedModel>> serving;
  std::map<std::int64_t, VersionStatus> versions;  // every version seen on disk
  // Under a memory budget: versions that would be serving but are not in memory, each with a
  // placeholder that loads it on its first request. Never also in `serving`.
  std::map<std::int64_t, std::shared_ptr<const LoadedModel>> cold;
  // Whether it has served since the server started. Only such a model counts for readiness: one
  // that never had a good version is reported (admin API, metrics, its own ready route) but does
  // not take a replica serving every other model out of its balancer.
  bool has_served = false;
  ModelControl control;  // the deployment, its history, unloaded, the stored revision

  // The version a request without an explicit version gets: the highest serving one.
  std::shared_ptr<const LoadedModel> default_version() const {
    const auto* newest = serving.empty() ? nullptr : &*serving.rbegin();
    if (!cold.empty() && (newest == nullptr || cold.rbegin()->first > newest->first)) {
      newest = &*cold.rbegin();
    }
    return newest == nullptr ? nullptr : newest->second;
  }
  // Every version a request can be routed to: in memory, or loaded by its first request.
  std::vector<std::int64_t> servable_versions() const {
    std::vector<std::int64_t> out;
    for (const auto& [v, _] : serving) out.push_back(v);
    for (const auto& [v, _] : cold) out.push_back(v);
    std::sort(out.begin(), out.end());
    return out;
  }
  // `version` in memory, else its placeholder, else null.
  std::shared_ptr<const LoadedModel> servable(std::int64_t version) const {
    if (auto s = serving.find(version); s != serving.end()) return s->second;
    if (auto c = cold.find(version); c != cold.end()) return c->second;
    return nullptr;
  }
  // The versions taking traffic now: the deployment's routes, or the policy's default.
  std::vector<std::int64_t> primary_versions() const;
};

struct RegistrySnapshot {
  std::map<std::string, ModelState, std::less<>> models;
  bool initial_sync_done = false;

  // Ready once the first sync finished and every model that has served still has a serving
  // version (or was unloaded on purpose).
  bool ready() const;
  std::vector<std::string> unready_models() const;  // models that served and now cannot
  // The loaded model a request for `model_id` should use: `version` if given, else the
  // deployment's choice for `experiment_key` (sticky), else the newest serving version.
  Result<std::shared_ptr<const LoadedModel>> resolve(std::string_view model_id,
                                                     std::optional<std::int64_t> version,
                                                     std::string_view experiment_key = {}) const;
  // Whether `model_id` (its `version`, if given) can serve now, as the protocol's model-ready
  // calls say: NotFound for an unknown model or version; false for a known one that cannot.
  Result<bool> model_ready(std::string_view model_id, std::optional<std::int64_t> version) const;
};

}  // namespace forklift
