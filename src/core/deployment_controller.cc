#include "core/deployment_controller.h"

#include <algorithm>

#include "core/schema_compat.h"
#include "observability/log.h"

namespace forklift {
namespace {

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

// The versions that would take traffic under `next`: its routes, or the policy's default.
std::vector<std::int64_t> primaries_under(const ModelState& model, const Deployment& next) {
  std::vector<std::int64_t> out;
  for (const Route& r : next.routes) out.push_back(r.version);
  if (out.empty()) {
    if (auto d = model.default_version()) out.push_back(d->version);
  }
  return out;
}

// Why `next` would have a version shadow itself (empty: it would not). Not forceable: comparing
// a version with itself says nothing.
std::string self_shadow(const ModelState& model, const Deployment& next) {
  const std::vector<std::int64_t> primaries = primaries_under(model, next);
  for (const Shadow& sh : next.shadows) {
    if (std::find(primaries.begin(), primaries.end(), sh.version) != primaries.end()) {
      return "version " + std::to_string(sh.version) +
             " would both take traffic and shadow it; a version cannot shadow itself" +
             (next.routes.empty() ? " (with no routes, the version policy's newest serving "
                                    "version takes the traffic: route it to another version)"
                                  : "");
    }
  }
  return {};
}

}  // namespace

DeploymentController::DeploymentController(StateStore& store,
                                           std::map<std::string, ModelControl, std::less<>>& stored,
                                           VersionManager& versions, std::function<void()> publish)
    : store_(store), stored_(stored), versions_(versions), publish_(std::move(publish)) {}

std::string DeploymentController::problems_with(const ModelState& model, const Deployment& next,
                                                const std::vector<std::int64_t>& current,
                                                bool force) const {
  std::vector<std::string> problems;
  if (std::string why = self_shadow(model, next); !why.empty()) return why;
  if (force) return {};
  const std::vector<std::int64_t> primaries = primaries_under(model, next);
  for (const Route& r : next.routes) {
    const LoadedModel& candidate = *model.serving.at(r.version);
    for (std::int64_t now : current) {
      if (now == r.version || !model.serving.contains(now)) continue;
      const auto breaks =
          schema_breaks(model.serving.at(now)->manifest.schema, candidate.manifest.schema);
      if (breaks.empty()) continue;
      problems.push_back("version " + std::to_string(r.version) + " vs version " +
                         std::to_string(now) + " (serving now): " + joined(breaks));
    }
  }
  // A shadow receives the primaries' requests: it must not need anything they lack.
  for (const Shadow& sh : next.shadows) {
    const LoadedModel& shadow = *model.serving.at(sh.version);
    for (std::int64_t p : primaries) {
      if (!model.serving.contains(p)) continue;
      std::vector<std::string> gaps;
      for (const std::string& b :
           schema_breaks(model.serving.at(p)->manifest.schema, shadow.manifest.schema)) {
        if (!b.starts_with("drops")) gaps.push_back(b);  // extra features are not passed on
      }
      if (gaps.empty()) continue;
      problems.push_back("shadow version " + std::to_string(sh.version) +
                         " cannot read the requests of version " + std::to_string(p) + ": " +
                         joined(gaps));
    }
  }
  if (problems.empty()) return {};
  std::string out = "the change would break callers of model '" + model.model_id + "': ";
  for (std::size_t i = 0; i < problems.size(); ++i) out += (i ? "; " : "") + problems[i];
  return out + ". Force it if callers are ready.";
}

Result<Deployment> DeploymentController::apply(ModelState& model, Deployment next,
                                               std::string_view actor, std::string_view action,
                                               History history, bool force) {
  if (Status s = next.validate(); !s.ok()) return s;
  // A change that changes nothing is answered, not recorded: a later rollback must undo the
  // last real change.
  if (history == History::kPush && next == model.control.deployment) {
    // (Unless it would now shadow a version with itself: the versions serving may have changed.)
    if (std::string why = self_shadow(model, next); !why.empty()) {
      return FailedPrecondition(std::move(why));
    }
    return model.control.deployment;
  }
  // Who takes traffic before the change: the callers a new version must not break.
  const std::vector<std::int64_t> current = model.primary_versions();
  // Versions loaded only to check this change; if it is refused they leave again, so that a
  // refused change never moves traffic (the newest serving version is the policy default).
  std::vector<std::int64_t> loaded_here;
  const auto refuse = [&](Status why) {
    for (std::int64_t v : loaded_here) {
      versions_.unload(model, v, "loaded for a deployment change that was refused");
    }
    publish_();  // show versions marked failed on the way
    return why;
  };
  if (Status s = load_needed(model, next, loaded_here); !s.ok()) return refuse(s);
  if (std::string problems = problems_with(model, next, current, force); !problems.empty()) {
    return refuse(FailedPrecondition(std::move(problems)));
  }
  ModelControl control = model.control;
  if (history == History::kPush) {
    control.history.push_back(model.control.deployment);
    if (control.history.size() > kMaxDeploymentHistory) {
      control.history.erase(control.history.begin());
    }
  } else if (!control.history.empty()) {
    control.history.pop_back();
  }
  control.deployment = std::move(next);
  control.revision = model.control.revision + 1;
  // A person's change takes over from a rollout in progress: it stops where it is.
  std::string reason;
  if (control.rollout && control.rollout->active()) {
    reason = "the deployment was changed by " + std::string(actor) + " (" + std::string(action) +
             "), which ends the rollout of version " + std::to_string(control.rollout->candidate);
    control.rollout->phase = RolloutPhase::kAborted;
    control.rollout->reason = reason;
    control.rollout->record(RolloutRecord{
        now_iso8601(), control.rollout->stage_name(), "aborted", std::string(actor), reason, {}});
  }
  if (Status s = commit(model, control, actor, action, model.control.deployment.describe(),
                        control.deployment.describe(), reason);
      !s.ok()) {
    return refuse(s);
  }
  publish_();
  return model.control.deployment;
}

Status DeploymentController::load_needed(ModelState& model, const Deployment& next,
                                         std::vector<std::int64_t>& loaded_here) {
  std::vector<std::int64_t> needed;
  for (const Route& r : next.routes) needed.push_back(r.version);
  for (const Shadow& sh : next.shadows) needed.push_back(sh.version);
  for (std::int64_t v : needed) {
    const bool was_serving = model.serving.contains(v);
    if (Status s = versions_.ensure_serving(model, v); !s.ok()) return s;
    if (!was_serving) loaded_here.push_back(v);
  }
  return Status::Ok();
}

Status DeploymentController::start_rollout(ModelState& model, Rollout rollout,
                                           std::string_view actor, bool force) {
  const Deployment next =
      rollout_deployment(rollout, unrelated_shadows(rollout, model.control.deployment));
  std::vector<std::int64_t> loaded_here;
  const auto refuse = [&](Status why) {
    for (std::int64_t v : loaded_here) {
      versions_.unload(model, v, "loaded for a rollout that was refused");
    }
    publish_();
    return why;
  };
  if (Status s = load_needed(model, next, loaded_here); !s.ok()) return refuse(s);
  if (Status s = versions_.ensure_serving(model, rollout.candidate); !s.ok()) return refuse(s);
  // The candidate will take traffic from the baseline's callers: the same check as a deploy.
  const Deployment both = Deployment::of({{rollout.baseline, 1}, {rollout.candidate, 1}});
  if (std::string problems = problems_with(model, both, {rollout.baseline}, force);
      !problems.empty()) {
    return refuse(FailedPrecondition(std::move(problems)));
  }
  ModelControl control = model.control;
  control.history.push_back(model.control.deployment);
  if (control.history.size() > kMaxDeploymentHistory)
    control.history.erase(control.history.begin());
  control.deployment = next;
  control.rollout = std::move(rollout);
  control.revision = model.control.revision + 1;
  if (Status s = commit(model, control, actor, "rollout-start", model.control.deployment.describe(),
                        control.deployment.describe(),
                        "rollout of version " + std::to_string(control.rollout->candidate) +
                            " from version " + std::to_string(control.rollout->baseline));
      !s.ok()) {
    return refuse(s);
  }
  publish_();
  return Status::Ok();
}

Status DeploymentController::step_rollout(ModelState& model, Rollout next, std::string_view actor,
                                          std::string_view action, std::string reason) {
  const std::optional<Rollout>& now = model.control.rollout;
  const std::vector<Shadow> others =
      now ? unrelated_shadows(*now, model.control.deployment) : model.control.deployment.shadows;
  Deployment deployment = rollout_deployment(next, others);
  std::vector<std::int64_t> loaded_here;
  Status loaded = load_needed(model, deployment, loaded_here);
  if (!loaded.ok() && !next.active()) {
    // A rollout must always be able to end: when the version it would route to is gone (its
    // directory removed), the version policy takes the traffic instead.
    deployment = Deployment{};
    deployment.shadows = others;
    loaded = load_needed(model, deployment, loaded_here);
  }
  if (Status s = loaded; !s.ok()) {
    for (std::int64_t v : loaded_here) versions_.unload(model, v, "loaded for a refused step");
    publish_();
    return s;
  }
  ModelControl control = model.control;
  control.deployment = deployment;
  control.rollout = std::move(next);
  control.revision = model.control.revision + 1;
  if (Status s = commit(model, control, actor, action, model.control.deployment.describe(),
                        control.deployment.describe(), std::move(reason));
      !s.ok()) {
    return s;
  }
  publish_();
  return Status::Ok();
}

Result<Deployment> DeploymentController::promote(ModelState& model, std::int64_t version,
                                                 std::string_view actor, bool force) {
  Deployment next = Deployment::of({{version, 1}});
  for (const Shadow& sh : model.control.deployment.shadows) {
    if (sh.version != version) next.shadows.push_back(sh);  // a promoted shadow stops shadowing
  }
  return apply(model, std::move(next), actor, "promote", History::kPush, force);
}

Result<Deployment> DeploymentController::rollback(ModelState& model, std::string_view actor) {
  if (model.control.history.empty()) {
    return FailedPrecondition("model '" + model.model_id + "' has no earlier deployment");
  }
  // Rolling back returns to what callers used before, so it is never refused for its schema.
  return apply(model, model.control.history.back(), actor, "rollback", History::kPop, true);
}

Status DeploymentController::unload(ModelState& model, std::string_view actor) {
  if (model.control.unloaded) return Status::Ok();  // already: nothing to record
  ModelControl next = model.control;
  next.unloaded = true;
  next.revision = model.control.revision + 1;
  if (Status s =
          commit(model, next, actor, "unload", model.control.deployment.describe(), "unloaded");
      !s.ok()) {
    return s;
  }
  versions_.unload_all(model, "model unloaded through the admin API");
  log::info("model_unloaded", {{"model_id", model.model_id}, {"actor", actor}});
  publish_();
  return Status::Ok();
}

Status DeploymentController::clear_unloaded(ModelState& model, std::string_view actor) {
  if (!model.control.unloaded) return Status::Ok();
  ModelControl next = model.control;
  next.unloaded = false;
  next.revision = model.control.revision + 1;
  if (Status s =
          commit(model, next, actor, "load", "unloaded", model.control.deployment.describe());
      !s.ok()) {
    return s;
  }
  log::info("model_loaded", {{"model_id", model.model_id}, {"actor", actor}});
  return Status::Ok();
}

void DeploymentController::record(ModelState& model, std::string_view actor,
                                  std::string_view action, std::string what) {
  ModelControl next = model.control;
  next.revision = model.control.revision + 1;
  if (Status s = commit(model, next, actor, action, what, what); !s.ok()) {
    log::warn("audit_not_stored", {{"model_id", model.model_id}, {"reason", s.message()}});
  }
}

void DeploymentController::pin(ModelState& model, std::int64_t version) {
  ModelControl next = model.control;
  next.deployment = Deployment::of({{version, 1}});
  next.revision = model.control.revision + 1;
  if (Status s = commit(model, next, "forklift", "hold", "policy", next.deployment.describe());
      !s.ok()) {
    // Pinned here all the same, so traffic does not move; the stored state (perhaps another
    // replica's identical pin) replaces this one when it arrives.
    log::warn("hold_not_stored", {{"model_id", model.model_id}, {"reason", s.message()}});
    model.control.deployment = next.deployment;
  }
}

Status DeploymentController::commit(ModelState& model, ModelControl next, std::string_view actor,
                                    std::string_view action, std::string before, std::string after,
                                    std::string reason) {
  AuditEntry entry{now_iso8601(),     std::string(actor), model.model_id,   std::string(action),
                   std::move(before), std::move(after),   std::move(reason)};
  if (Status s = store_.commit(model.model_id, next, entry); !s.ok()) {
    log::error("state_not_stored", {{"model_id", model.model_id},
                                    {"action", entry.action},
                                    {"store", store_.describe()},
                                    {"reason", s.message()}});
    return s;
  }
  stored_[model.model_id] = next;
  model.control = std::move(next);
  log::info("deployment_changed", {{"model_id", model.model_id},
                                   {"action", entry.action},
                                   {"actor", entry.actor},
                                   {"before", entry.before},
                                   {"after", entry.after},
                                   {"reason", entry.reason},
                                   {"revision", model.control.revision}});
  return Status::Ok();
}

Result<bool> DeploymentController::apply_remote(ModelState& model, const ModelControl& control) {
  const auto not_applied = [&](const Status& why) {
    log::error(
        "remote_change_not_applied",
        {{"model_id", model.model_id}, {"revision", control.revision}, {"reason", why.message()}});
    return why;
  };
  bool needs_sync = false;
  if (control.unloaded) {
    model.control = control;
    versions_.unload_all(model, "model unloaded through the admin API (another replica)");
  } else {
    // Load what the change routes to before it takes effect, so no request meets a version
    // that is not serving here.
    for (const Route& r : control.deployment.routes) {
      if (Status s = versions_.ensure_serving(model, r.version); !s.ok()) return not_applied(s);
    }
    for (const Shadow& sh : control.deployment.shadows) {
      if (Status s = versions_.ensure_serving(model, sh.version); !s.ok()) return not_applied(s);
    }
    needs_sync = model.control.unloaded;
    model.control = control;
  }
  stored_[model.model_id] = control;
  log::info(
      "remote_change_applied",
      {{"model_id", model.model_id},
       {"revision", control.revision},
       {"deployment", control.unloaded ? std::string("unloaded") : control.deployment.describe()}});
  return needs_sync;
}

}  // namespace forklift
