// Deployment control for one model id at a time: deploy, promote, rollback, unload, load and the
// changes other replicas stored. A change is checked (versions exist and pass, schemas do not
// break callers, a version does not shadow itself), written through the state store with its
// audit entry, and only then takes effect. A change that changes nothing is not recorded.
//
// Runs under the registry's lock; the version manager loads what a change needs.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/model_state.h"
#include "core/state_store.h"
#include "core/version_manager.h"

namespace forklift {

class DeploymentController {
 public:
  // `stored`: the stored control state of every model id, including ones not on disk here.
  DeploymentController(StateStore& store, std::map<std::string, ModelControl, std::less<>>& stored,
                       VersionManager& versions, std::function<void()> publish);

  enum class History { kPush, kPop };
  // Routes traffic per `next` (deploy, promote, rollback: `action` names it in the audit log).
  Result<Deployment> apply(ModelState& model, Deployment next, std::string_view actor,
                           std::string_view action, History history, bool force);
  Result<Deployment> promote(ModelState& model, std::int64_t version, std::string_view actor,
                             bool force);
  Result<Deployment> rollback(ModelState& model, std::string_view actor);
  // Marks the model unloaded (stored) and takes every version out of serving.
  Status unload(ModelState& model, std::string_view actor);
  // Clears `unloaded` (stored); the caller then syncs the model's versions.
  Status clear_unloaded(ModelState& model, std::string_view actor);
  // An audit entry for a change that leaves the control state as it is (a reload).
  void record(ModelState& model, std::string_view actor, std::string_view action, std::string what);
  // new_versions: hold: pins traffic to `version` (stored as forklift's own change).
  void pin(ModelState& model, std::int64_t version);
  // Starts a rollout of `rollout.candidate` from `rollout.baseline` (both set by the caller):
  // loads the candidate, checks its schema against the baseline's unless `force`, keeps the
  // current deployment for rollback and routes per the rollout's first stage.
  Status start_rollout(ModelState& model, Rollout rollout, std::string_view actor, bool force);
  // Stores the model's rollout as `next` (a step: advance, promote, roll back, pause, resume,
  // abort, with its timeline entry already recorded) and routes traffic per its stage.
  // `action` names it in the audit log; `reason` says why.
  Status step_rollout(ModelState& model, Rollout next, std::string_view actor,
                      std::string_view action, std::string reason);
  // A change another replica stored: applied unless this one has that revision. Versions it
  // routes to are loaded first; if one cannot serve here, nothing changes and the reason is
  // returned. Returns whether the model's versions need a sync (it was loaded again).
  Result<bool> apply_remote(ModelState& model, const ModelControl& control);

 private:
  // Stores `next` with an audit entry, then adopts it.
  Status commit(ModelState& model, ModelControl next, std::string_view actor,
                std::string_view action, std::string before, std::string after,
                std::string reason = {});
  // Loads what `next` routes to or shadows with: the versions it loaded (to unload if the
  // change is refused), or why one cannot serve.
  Status load_needed(ModelState& model, const Deployment& next,
                     std::vector<std::int64_t>& loaded_here);
  // Why `next` would break callers or shadow a version with itself (empty: it would not).
  // `current`: the versions taking traffic before the change.
  std::string problems_with(const ModelState& model, const Deployment& next,
                            const std::vector<std::int64_t>& current, bool force) const;

  StateStore& store_;
  std::map<std::string, ModelControl, std::less<>>& stored_;
  VersionManager& versions_;
  std::function<void()> publish_;
};

}  // namespace forklift
