// The registry of model ids, their versions and which of them serve: the one object the rest of
// forklift talks to. It puts three parts together, each in its own file:
//
//   SnapshotPublisher   lock-free snapshots for readers (every request), retiring off the hot path
//   VersionManager      which versions are in memory, and their lifecycle (version_state.h)
//   DeploymentController deploy, promote, rollback, load, unload and other replicas' changes
//
// Readers take an immutable snapshot without waiting for a load. Changes (repository syncs,
// control-plane calls) are serialised under one mutex, work on a private copy, and publish a new
// snapshot after each step.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cold_start.h"
#include "core/deployment_controller.h"
#include "core/model_state.h"
#include "core/snapshot_publisher.h"
#include "core/state_store.h"
#include "core/version_manager.h"
#include "observability/metrics.h"

namespace forklift {

class ModelRegistry {
 public:
  // `store` keeps deployments and the audit log (in memory when null): read here, written
  // through before every change takes effect, so a change it cannot store is refused.
  ModelRegistry(std::filesystem::path root, MetricsRegistry& metrics,
                std::shared_ptr<StateStore> store = nullptr);

  // Scans the repository, loads and self-tests what the version policies and deployments ask
  // for, and retires what they no longer want. Safe to call from any thread; calls are serialised.
  Status sync();

  // Routes a model id's traffic. Every version named must exist on disk; one not loaded yet is
  // loaded and self-tested first, and the change is refused if it fails. The previous deployment
  // is kept for rollback. Unless `force`, a version whose input schema would break requests that
  // the versions serving now accept is refused (FailedPrecondition, listing the differences). A
  // version never both takes traffic and shadows it. A change that changes nothing is not
  // recorded.
  Result<Deployment> set_deployment(std::string_view model_id, Deployment deployment,
                                    std::string_view actor, std::string_view action = "deploy",
                                    bool force = false);
  // Sends all traffic to `version`, keeping the other shadows (a promoted shadow stops shadowing).
  Result<Deployment> promote(std::string_view model_id, std::int64_t version,
                             std::string_view actor, bool force = false);
  // Returns to the deployment before the last change.
  Result<Deployment> rollback(std::string_view model_id, std::string_view actor);
  // The model repository extension's load and unload: unload stops every version of a model id
  // (in-flight requests finish) until load, which rescans its directory and loads what the
  // policy and deployment ask for. Both are kept in the state file.
  Status unload_model(std::string_view model_id, std::string_view actor);
  Status load_model(std::string_view model_id, std::string_view actor);
  // Loads `version` again from its files (model.yaml included) and self-tests it; a serving
  // version keeps its current copy until the new one passes (and if it fails). Unless `force`, a
  // new copy of a version taking traffic whose schema would break its callers is refused, as a
  // deployment change would be. Recorded in the audit log.
  Status reload_version(std::string_view model_id, std::int64_t version, std::string_view actor,
                        bool force = false);
  // Starts a rollout (core/rollout/) of `candidate`, else of the newest serving version newer
  // than production, from the one version taking traffic now, under `policy`, else the
  // candidate's model.yaml `rollout:`, else the defaults; `overrides` (policy JSON), if given,
  // changes the fields it names of that policy. Refused while another is running, when traffic
  // is split, and (unless `force`) when the candidate's schema would break callers.
  Result<Rollout> start_rollout(std::string_view model_id, std::optional<std::int64_t> candidate,
                                std::optional<RolloutPolicy> policy, std::string_view actor,
                                bool force = false, std::string_view overrides = {});
  // Takes one step of the model's rollout and routes traffic for it. `based_on`, when set, is
  // the revision of the control state the step was decided on: if it changed since (a person,
  // another replica), the step is refused (FailedPrecondition) and decided again.
  Result<Rollout> step_rollout(std::string_view model_id, RolloutStep step, std::string_view actor,
                               std::string reason = {},
                               std::vector<std::pair<std::string, double>> signals = {},
                               std::optional<std::int64_t> based_on = std::nullopt);

  // The newest audit entries, oldest first (from the store: every replica's changes).
  Result<std::vector<AuditEntry>> audit() const;

  // A change another replica stored: applied unless this registry already has that revision.
  // Versions it routes to are loaded first; if one cannot serve here, the change is not applied
  // (traffic stays where it was) and the reason is logged and returned.
  Status apply_remote(std::string_view model_id, const ModelControl& control);

  // Frees versions that left the registry once no request or snapshot holds them any more.
  // Called on the loader thread (and after admin changes) so that destroying a large model never
  // happens on a serving thread, where it would show as a latency spike.
  // Versions whose copy was freed move from unloading to unloaded (unless a change is running:
  // then the next call does it).
  void collect_retired();

  // Many models in bounded memory (--memory-budget-mb). Call before the first sync. Versions of
  // models whose model.yaml says `memory: pinned` load at once and stay; every other version is
  // published as a placeholder and loaded by its first request (requests share one load and
  // wait at most `max_wait`, then get Unavailable). Before a load that would pass the budget,
  // the loaded versions least worth keeping are evicted: the least used since they loaded, the
  // largest and the quickest to load again first, with aging (make_room).
  struct MemoryBudget {
    std::uint64_t budget_bytes = 0;
    std::chrono::milliseconds max_wait{5000};
    std::size_t max_waiting = 4096;  // requests waiting for loads at once; more get Unavailable
  };
  void enable_memory_budget(const MemoryBudget& budget);
  const MemoryBudgetStats* memory_budget() const { return budget_stats_.get(); }
  // A version with a placeholder, loaded for good (ColdStarter's load; evicts as needed).
  Result<std::shared_ptr<const LoadedModel>> load_on_demand(const std::string& model_id,
                                                            std::int64_t version);

  // The current snapshot; lock-free (snapshot_publisher.h).
  std::shared_ptr<const RegistrySnapshot> snapshot() const { return publisher_.snapshot(); }
  const std::filesystem::path& root() const { return root_; }
  const StateStore& state_store() const { return *store_; }

 private:
  // The model's state, adopting the stored control state when it first appears.
  ModelState& model_entry(const std::string& model_id);
  ModelState* find(std::string_view model_id);
  void sync_versions(ModelState& model, const std::vector<std::int64_t>& on_disk);
  void publish();
  void load_state();
  // Evicts loaded on-demand versions, least worth keeping first, until `extra` more bytes fit
  // the budget; never `keep`. Under sync_mu_.
  void make_room(std::uint64_t extra, const ModelState* keep_model, std::int64_t keep_version);
  std::uint64_t loaded_bytes() const;

  std::filesystem::path root_;
  std::shared_ptr<StateStore> store_;
  SnapshotPublisher<RegistrySnapshot> publisher_;
  mutable std::mutex sync_mu_;  // serialises every change; never taken by readers
  RegistrySnapshot working_;    // guarded by sync_mu_
  // The stored control state of every model id, including ones not (yet) on disk here; a model
  // directory that appears starts from it. Guarded by sync_mu_.
  std::map<std::string, ModelControl, std::less<>> stored_;
  std::vector<std::string> last_skipped_;  // the last scan's skipped entries; guarded by sync_mu_
  VersionManager versions_;
  DeploymentController deployments_;
  std::uint64_t budget_bytes_ = 0;  // 0: no memory budget
  double keep_clock_ = 0;           // make_room's aging clock (L); under sync_mu_
  std::unique_ptr<MemoryBudgetStats> budget_stats_;
  // Last: destroyed first, so its threads stop before what they call into goes.
  std::unique_ptr<ColdStarter> starter_;
};

}  // namespace forklift
