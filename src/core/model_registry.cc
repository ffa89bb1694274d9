#include "core/model_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/repository.h"
#include "core/schema_compat.h"
#include "observability/log.h"

namespace forklift {

ModelRegistry::ModelRegistry(std::filesystem::path root, MetricsRegistry& metrics,
                             std::shared_ptr<StateStore> store)
    : root_(std::move(root)),
      store_(store ? std::move(store) : std::make_shared<MemoryStateStore>()),
      publisher_(std::make_shared<const RegistrySnapshot>()),
      versions_(root_, metrics, [this] { publish(); }),
      deployments_(*store_, stored_, versions_, [this] { publish(); }) {
  load_state();
}

void ModelRegistry::publish() {
  auto next = std::make_shared<const RegistrySnapshot>(working_);
  const std::shared_ptr<const RegistrySnapshot> previous = publisher_.publish(next);
  // Versions in the previous snapshot but not in the next are retired: the last reference is
  // then dropped by collect_retired on this side, not by a serving thread.
  for (const auto& [id, m] : previous->models) {
    const auto now = next->models.find(id);
    for (const auto& [v, loaded] : m.serving) {
      const bool kept = now != next->models.end() && now->second.serving.contains(v) &&
                        now->second.serving.at(v) == loaded;
      if (!kept) publisher_.retire(loaded);
    }
  }
}

ModelState& ModelRegistry::model_entry(const std::string& model_id) {
  ModelState& model = working_.models[model_id];
  if (model.model_id.empty()) {
    model.model_id = model_id;
    if (auto st = stored_.find(model_id); st != stored_.end()) model.control = st->second;
  }
  return model;
}

ModelState* ModelRegistry::find(std::string_view model_id) {
  auto it = working_.models.find(model_id);
  return it == working_.models.end() ? nullptr : &it->second;
}

void ModelRegistry::sync_versions(ModelState& model, const std::vector<std::int64_t>& on_disk) {
  if (auto hold_at = versions_.sync(model, on_disk)) deployments_.pin(model, *hold_at);
}

Status ModelRegistry::sync() {
  std::lock_guard lock(sync_mu_);
  std::vector<std::string> skipped;
  auto scanned = scan_repository(root_, &skipped);
  if (!scanned.ok()) {
    log::error("repository_unreadable", {{"reason", scanned.status().message()}});
    return scanned.status();
  }
  // Logged when they change, not on every poll (200 broken links polled every 0.2 s would be
  // 1,000 lines a second).
  if (skipped != last_skipped_) {
    for (const auto& s : skipped) log::warn("repository_entry_skipped", {{"reason", s}});
    last_skipped_ = std::move(skipped);
  }
  std::set<std::string> present;
  for (const auto& dir : *scanned) {
    present.insert(dir.model_id);
    ModelState& model = model_entry(dir.model_id);
    if (model.control.unloaded) {
      versions_.finish_unloading(model);
    } else {
      sync_versions(model, dir.versions);
    }
    publish();
  }
  for (auto it = working_.models.begin(); it != working_.models.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    for (const auto& [v, _] : it->second.serving) {
      log::info(
          "version_unloaded",
          {{"model_id", it->first}, {"version", v}, {"reason", "its model directory was removed"}});
    }
    it = working_.models.erase(it);
  }
  working_.initial_sync_done = true;
  publish();
  return Status::Ok();
}

namespace {

Status unknown(std::string_view model_id) {
  return NotFound("unknown model '" + std::string(model_id) + "'");
}

}  // namespace

Result<Deployment> ModelRegistry::set_deployment(std::string_view model_id, Deployment deployment,
                                                 std::string_view actor, std::string_view action,
                                                 bool force) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  return deployments_.apply(*model, std::move(deployment), actor, action,
                            DeploymentController::History::kPush, force);
}

Result<Deployment> ModelRegistry::promote(std::string_view model_id, std::int64_t version,
                                          std::string_view actor, bool force) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  return deployments_.promote(*model, version, actor, force);
}

Result<Deployment> ModelRegistry::rollback(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  return deployments_.rollback(*model, actor);
}

Status ModelRegistry::unload_model(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  return deployments_.unload(*model, actor);
}

Status ModelRegistry::load_model(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  if (!is_valid_model_id(model_id)) return unknown(model_id);
  auto scanned = scan_repository(root_);
  if (!scanned.ok()) return scanned.status();
  const auto dir = std::find_if(scanned->begin(), scanned->end(),
                                [&](const ModelDirectory& d) { return d.model_id == model_id; });
  if (dir == scanned->end()) {
    return NotFound("model '" + std::string(model_id) + "' is not in the repository");
  }
  ModelState& model = model_entry(dir->model_id);
  if (Status s = deployments_.clear_unloaded(model, actor); !s.ok()) return s;
  sync_versions(model, dir->versions);
  publish();
  if (model.serving.empty()) {
    return FailedPrecondition("model '" + model.model_id +
                              "' has no version that loads and passes its self-tests");
  }
  return Status::Ok();
}

Status ModelRegistry::reload_version(std::string_view model_id, std::int64_t version,
                                     std::string_view actor, bool force) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  if (model->control.unloaded) {
    return FailedPrecondition("model '" + model->model_id + "' is unloaded; load it first");
  }
  log::info("version_reload_requested",
            {{"model_id", model->model_id}, {"version", version}, {"actor", actor}});
  const std::vector<std::int64_t> primaries = model->primary_versions();
  const bool takes_traffic =
      std::find(primaries.begin(), primaries.end(), version) != primaries.end();
  const auto accept = [&](const LoadedModel& current, const LoadedModel& fresh) -> Status {
    if (force || !takes_traffic) return Status::Ok();
    const auto breaks = schema_breaks(current.manifest.schema, fresh.manifest.schema);
    if (breaks.empty()) return Status::Ok();
    std::string why;
    for (const std::string& b : breaks) why += (why.empty() ? "" : ", ") + b;
    return FailedPrecondition("the new copy of version " + std::to_string(version) +
                              " would break callers of model '" + model->model_id + "': " + why +
                              " (the current copy keeps serving). Force it if callers are ready.");
  };
  Status s = versions_.reload(*model, version, accept);
  if (s.ok()) deployments_.record(*model, actor, "reload", "version " + std::to_string(version));
  publish();
  return s;
}

void ModelRegistry::collect_retired() {
  publisher_.collect_retired();
  // Never waits for a load: that is what try_lock is for.
  std::unique_lock lock(sync_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  bool changed = false;
  for (auto& [id, model] : working_.models) changed = versions_.finish_unloading(model) || changed;
  if (changed) publish();
}

Result<std::vector<AuditEntry>> ModelRegistry::audit() const {
  return store_->audit(kMaxAuditEntries);
}

Status ModelRegistry::apply_remote(std::string_view model_id, const ModelControl& control) {
  std::lock_guard lock(sync_mu_);
  auto known = stored_.find(model_id);
  if (known != stored_.end() && known->second.revision >= control.revision) return Status::Ok();
  ModelState* model = find(model_id);
  if (model == nullptr) {
    stored_[std::string(model_id)] = control;  // not on disk here: applied when it appears
    return Status::Ok();
  }
  auto applied = deployments_.apply_remote(*model, control);
  if (!applied.ok()) return applied.status();
  if (*applied) {  // loaded again on the other replica: load what the policy wants here
    auto scanned = scan_repository(root_);
    if (scanned.ok()) {
      for (const auto& dir : *scanned) {
        if (dir.model_id == model->model_id) sync_versions(*model, dir.versions);
      }
    }
  }
  publish();
  return Status::Ok();
}

void ModelRegistry::load_state() {
  auto state = store_->load();
  if (!state.ok()) {
    log::error("state_unreadable",
               {{"store", store_->describe()}, {"reason", state.status().message()}});
    return;
  }
  stored_ = std::move(state->models);
  log::info("state_loaded",
            {{"store", store_->describe()}, {"models", static_cast<std::int64_t>(stored_.size())}});
}

}  // namespace forklift
