// The registry of model ids, their versions and which of them serve.
//
// Readers (every request) take an immutable snapshot: a pointer copy under a mutex held for a few
// nanoseconds, never during a load. The loader (start-up, repository polls) works on its own copy
// under another mutex and publishes a new snapshot after each change, so serving never waits for
// a load.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/control_state.h"
#include "core/deployment.h"
#include "core/state_store.h"
#include "core/version_loader.h"
#include "observability/metrics.h"

namespace forklift {

// The life of one version (TF Serving's loader-harness states, Triton's ModelReadyState).
enum class VersionState { kLoading, kReady, kFailed, kUnloaded };
std::string_view to_string(VersionState state);

struct VersionStatus {
  std::int64_t version = 0;
  VersionState state = VersionState::kLoading;
  std::string message;  // why it failed or was unloaded
  std::optional<SelfTestReport> selftest;
  double load_seconds = 0;
};

struct ModelState {
  std::string model_id;
  VersionPolicy policy;
  bool hold_new_versions = false;
  std::map<std::int64_t, std::shared_ptr<const LoadedModel>> serving;
  std::map<std::int64_t, VersionStatus> versions;  // every version seen on disk
  bool unloaded = false;  // unloaded through the admin API: serves nothing until loaded
  // Whether /readyz waits for this model: one with versions on disk at start, or one that has
  // served since. A model id that appears later and has not served yet (still loading, every
  // version failing, a stray directory) does not take a ready replica out of its balancer.
  bool required_for_readiness = false;
  Deployment deployment;            // empty: the version policy decides
  std::vector<Deployment> history;  // earlier deployments, newest last (for rollback)
  std::int64_t revision = 0;        // of the stored control state this reflects

  ModelControl control() const { return {deployment, history, unloaded, revision}; }

  // The version a request without an explicit version gets: the highest serving one.
  std::shared_ptr<const LoadedModel> default_version() const {
    return serving.empty() ? nullptr : serving.rbegin()->second;
  }
};

struct RegistrySnapshot {
  std::map<std::string, ModelState, std::less<>> models;
  bool initial_sync_done = false;

  // Ready once the first sync finished and every model required for readiness (see ModelState)
  // has a serving version.
  bool ready() const;
  std::vector<std::string> unready_models() const;  // required ones without a serving version
  // The loaded model a request for `model_id` should use: `version` if given, else the
  // deployment's choice for `experiment_key` (sticky), else the newest serving version.
  Result<std::shared_ptr<const LoadedModel>> resolve(std::string_view model_id,
                                                     std::optional<std::int64_t> version,
                                                     std::string_view experiment_key = {}) const;
};

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
  // is kept for rollback.
  // Unless `force`, a version whose input schema would break requests that the versions serving
  // now accept is refused (FailedPrecondition, listing the differences).
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
  // The newest audit entries, oldest first (from the store: every replica's changes).
  Result<std::vector<AuditEntry>> audit() const;

  // A change another replica stored: applied unless this registry already has that revision.
  // Versions it routes to are loaded first; if one cannot serve here, the change is not applied
  // (traffic stays where it was) and the reason is logged and returned.
  Status apply_remote(std::string_view model_id, const ModelControl& control);

  // Frees versions that left the registry once no request or snapshot holds them any more.
  // Called on the loader thread (and after admin changes) so that destroying a large model never
  // happens on a serving thread, where it would show as a latency spike.
  void collect_retired();

  // The current snapshot. Lock-free unless a new one was published since this thread's last
  // call (Envoy's thread-local slots follow the same idea).
  std::shared_ptr<const RegistrySnapshot> snapshot() const;
  const std::filesystem::path& root() const { return root_; }
  const StateStore& state_store() const { return *store_; }

 private:
  void sync_model(ModelState& model, const std::vector<std::int64_t>& on_disk);
  bool try_load(ModelState& model, std::int64_t version);
  // Makes `version` serve for a deployment, loading it if needed.
  Status ensure_serving(ModelState& model, std::int64_t version);
  enum class History { kPush, kPop };
  Result<Deployment> apply(ModelState& model, Deployment next, std::string_view actor,
                           std::string_view action, History history, bool force);
  // Stores `next` as the model's control state with an audit entry, then adopts it in memory.
  Status commit(ModelState& model, ModelControl next, std::string_view actor,
                std::string_view action, std::string before, std::string after);
  void adopt(ModelState& model, const ModelControl& control);
  void publish();
  void load_state();

  std::filesystem::path root_;
  MetricsRegistry& metrics_;
  std::shared_ptr<StateStore> store_;
  mutable std::mutex sync_mu_;
  RegistrySnapshot working_;  // guarded by sync_mu_
  // The stored control state of every model id, including ones not (yet) on disk here; a model
  // directory that appears starts from it. Guarded by sync_mu_.
  std::map<std::string, ModelControl, std::less<>> stored_;
  std::vector<std::string> last_skipped_;  // the last scan's skipped entries; guarded by sync_mu_
  // Guards retired_ and retired_snapshots_ only. Never held during a load, so freeing retired
  // versions (after every admin change, on every loader tick) never waits for one.
  mutable std::mutex retired_mu_;
  // Versions no longer in the registry, kept so the last reference is dropped here, not by
  // whichever request or snapshot happens to release it last. Guarded by retired_mu_.
  std::vector<std::shared_ptr<const LoadedModel>> retired_;
  // Earlier snapshots, for the same reason: they were allocated on the loader side, and a serving
  // thread that freed one would take the loader's malloc arena lock (measured: millisecond stalls
  // while the idle-priority loader held it). Guarded by retired_mu_.
  std::vector<std::shared_ptr<const RegistrySnapshot>> retired_snapshots_;
  // Readers keep a per-thread weak copy of the snapshot pointer and refresh it, under
  // snapshot_mu_, only when generation_ moved. Neither std::atomic<std::shared_ptr> (libstdc++ 12
  // makes a futex call per load: measured two per request) nor a mutex per read (the loader thread
  // runs at idle priority; holding a lock readers need turns into millisecond stalls: measured)
  // will do.
  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const RegistrySnapshot> snapshot_;  // guarded by snapshot_mu_
  std::atomic<std::uint64_t> generation_{0};          // changes with every publish
};

}  // namespace forklift
