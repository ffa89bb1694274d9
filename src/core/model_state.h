// What the registry knows about each model id, published to readers as an immutable snapshot.
#pragma once

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
  // The ready versions, by number: what requests can be routed to.
  std::map<std::int64_t, std::shared_ptr<const LoadedModel>> serving;
  std::map<std::int64_t, VersionStatus> versions;  // every version seen on disk
  // Whether it has served since the server started. Only such a model counts for readiness: one
  // that never had a good version is reported (admin API, metrics, its own ready route) but does
  // not take a replica serving every other model out of its balancer.
  bool has_served = false;
  ModelControl control;  // the deployment, its history, unloaded, the stored revision

  // The version a request without an explicit version gets: the highest serving one.
  std::shared_ptr<const LoadedModel> default_version() const {
    return serving.empty() ? nullptr : serving.rbegin()->second;
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
};

}  // namespace forklift
