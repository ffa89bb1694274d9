#include "core/model_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "common/process_memory.h"
#include "core/repository.h"
#include "core/schema_compat.h"
#include "core/version_files.h"
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
  // Pinned versions loaded here count against the budget too.
  make_room(0, nullptr, 0);
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

Result<Rollout> ModelRegistry::start_rollout(std::string_view model_id,
                                             std::optional<std::int64_t> candidate,
                                             std::optional<RolloutPolicy> policy,
                                             std::string_view actor, bool force,
                                             std::string_view overrides) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  const std::string who = "model '" + model->model_id + "'";
  if (model->control.unloaded) return FailedPrecondition(who + " is unloaded; load it first");
  if (model->control.rollout && model->control.rollout->active()) {
    return FailedPrecondition(who + " has a rollout of version " +
                              std::to_string(model->control.rollout->candidate) +
                              " in progress; abort it first");
  }
  const std::vector<std::int64_t> production = model->primary_versions();
  if (production.size() != 1) {
    return FailedPrecondition(who + (production.empty()
                                         ? " has no version serving to roll out from"
                                         : " splits its traffic between versions; a rollout starts "
                                           "from one production version (promote one first)"));
  }
  Rollout r;
  r.baseline = production.front();
  if (candidate) {
    r.candidate = *candidate;
  } else {
    const auto newest = model->serving.empty() ? 0 : model->serving.rbegin()->first;
    if (newest <= r.baseline) {
      return FailedPrecondition(who + " has no serving version newer than version " +
                                std::to_string(r.baseline) + " (production); name one");
    }
    r.candidate = newest;
  }
  if (r.candidate == r.baseline) {
    return FailedPrecondition("version " + std::to_string(r.candidate) +
                              " is production already; roll out another version");
  }
  if (Status s = versions_.ensure_serving(*model, r.candidate); !s.ok()) {
    publish();
    return s;
  }
  const auto& manifest_policy = model->serving.at(r.candidate)->manifest.rollout;
  r.policy = policy ? *policy : manifest_policy ? *manifest_policy : RolloutPolicy{};
  if (!overrides.empty()) {
    auto merged = parse_rollout_policy_json(overrides, r.policy);
    if (!merged.ok()) return merged.status();
    r.policy = std::move(merged).value();
  }
  if (Status s = r.policy.validate(); !s.ok()) return s;
  // A quality guardrail that could never judge (predictions not kept, a metric the versions'
  // task lacks, two tasks that do not compare) is refused rather than silently passed.
  if (const std::string& metric = r.policy.guardrails.quality_metric; !metric.empty()) {
    const QualitySpec& base = model->serving.at(r.baseline)->manifest.quality;
    const QualitySpec& cand = model->serving.at(r.candidate)->manifest.quality;
    for (const auto& [v, spec] : {std::pair{r.baseline, base}, std::pair{r.candidate, cand}}) {
      if (!spec.enabled()) {
        return FailedPrecondition("the quality guardrail needs labels, but version " +
                                  std::to_string(v) + "'s model.yaml declares no quality:");
      }
    }
    if (base.task != cand.task) {
      return FailedPrecondition("the quality guardrail compares like with like, but versions " +
                                std::to_string(r.baseline) + " and " + std::to_string(r.candidate) +
                                " declare different quality tasks");
    }
    if (metric != "mae" && base.task != QualitySpec::Task::kBinaryClassification) {
      return FailedPrecondition("the quality metric " + metric +
                                " is for binary classifiers; these versions are regressors "
                                "(use mae)");
    }
  }
  r.started_unix_ms = r.stage_started_unix_ms = now_unix_ms();
  r.record(RolloutRecord{now_iso8601(),
                         r.stage_name(),
                         "started",
                         std::string(actor),
                         "version " + std::to_string(r.candidate) + " replaces version " +
                             std::to_string(r.baseline) + " through " +
                             std::to_string(r.policy.stage_count()) + " stages",
                         {}});
  if (Status s = deployments_.start_rollout(*model, r, actor, force); !s.ok()) return s;
  log::info("rollout_started", {{"model_id", model->model_id},
                                {"candidate", r.candidate},
                                {"baseline", r.baseline},
                                {"stage", r.stage_name()},
                                {"actor", actor}});
  return *model->control.rollout;
}

Result<Rollout> ModelRegistry::step_rollout(std::string_view model_id, RolloutStep step,
                                            std::string_view actor, std::string reason,
                                            std::vector<std::pair<std::string, double>> signals,
                                            std::optional<std::int64_t> based_on) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  if (model == nullptr) return unknown(model_id);
  if (!model->control.rollout) {
    return FailedPrecondition("model '" + model->model_id + "' has no rollout");
  }
  if (based_on && *based_on != model->control.revision) {
    return FailedPrecondition("model '" + model->model_id +
                              "' changed since the step was decided; deciding again");
  }
  auto next = next_rollout(*model->control.rollout, step, actor, reason, std::move(signals));
  if (!next.ok()) return next.status();
  const std::string stage = model->control.rollout->stage_name();
  // The audit log gets the reason the timeline records (a default one for a plain step).
  std::string audit_reason = next->timeline.back().reason;
  if (Status s = deployments_.step_rollout(*model, *next, actor, step_action(step),
                                           std::move(audit_reason));
      !s.ok()) {
    return s;
  }
  const Rollout& now = *model->control.rollout;
  const std::string& why = now.timeline.back().reason;
  if (step == RolloutStep::kRollBack) {
    log::warn("rollout_rolled_back", {{"model_id", model->model_id},
                                      {"candidate", now.candidate},
                                      {"baseline", now.baseline},
                                      {"stage", stage},
                                      {"reason", why}});
  } else {
    log::info("rollout_step", {{"model_id", model->model_id},
                               {"action", step_action(step)},
                               {"candidate", now.candidate},
                               {"stage", now.stage_name()},
                               {"phase", phase_name(now.phase)},
                               {"actor", actor},
                               {"reason", why}});
  }
  return now;
}

void ModelRegistry::enable_memory_budget(const MemoryBudget& budget) {
  std::lock_guard lock(sync_mu_);
  budget_bytes_ = budget.budget_bytes;
  budget_stats_ = std::make_unique<MemoryBudgetStats>();
  budget_stats_->budget_bytes = budget.budget_bytes;
  starter_ = std::make_unique<ColdStarter>(
      [this](const std::string& id, std::int64_t v) { return load_on_demand(id, v); },
      budget.max_wait, budget.max_waiting, budget_stats_.get());
  versions_.set_cold_start(starter_.get(), [](const ModelState& model) { return !model.pinned; });
}

std::uint64_t ModelRegistry::loaded_bytes() const {
  std::uint64_t used = 0;
  for (const auto& [id, m] : working_.models) {
    for (const auto& [v, loaded] : m.serving) {
      if (auto st = m.versions.find(v); st != m.versions.end()) used += st->second.memory_bytes;
    }
  }
  return used;
}

namespace {

std::uint64_t requests_of(const LoadedModel& loaded) {
  if (!loaded.metrics) return 0;
  const VersionMetrics& m = *loaded.metrics;
  return m.ok.load(std::memory_order_relaxed) + m.client_error.load(std::memory_order_relaxed) +
         m.server_error.load(std::memory_order_relaxed);
}

}  // namespace

// Greedy-Dual-Size-Frequency (Cherkasova, 1998): a loaded version is worth keeping by
//   L (the aging clock when it loaded) + requests since it loaded x load seconds / size in MB,
// and the least worth keeping goes first; L then rises to its value, so versions that were
// popular once and are no longer age out, while a small, slow-to-load, busy version stays.
void ModelRegistry::make_room(std::uint64_t extra, const ModelState* keep_model,
                              std::int64_t keep_version) {
  if (budget_bytes_ == 0) return;
  std::uint64_t used = loaded_bytes();
  while (used + extra > budget_bytes_) {
    ModelState* victim_model = nullptr;
    std::int64_t victim = 0;
    double lowest = 0;
    std::uint64_t victim_requests = 0;
    for (auto& [id, m] : working_.models) {
      if (!versions_.lazy(m)) continue;  // pinned models stay
      for (const auto& [v, loaded] : m.serving) {
        if (&m == keep_model && v == keep_version) continue;
        const VersionStatus& st = m.versions[v];
        const std::uint64_t now = requests_of(*loaded);
        const std::uint64_t since = now > st.requests_at_load ? now - st.requests_at_load : 0;
        const double size_mb = std::max(static_cast<double>(st.memory_bytes) / (1 << 20), 0.001);
        const double worth = st.keep_base + static_cast<double>(since + 1) *
                                                std::max(st.load_seconds, 0.001) / size_mb;
        if (victim_model == nullptr || worth < lowest) {
          lowest = worth;
          victim_model = &m;
          victim = v;
          victim_requests = since;
        }
      }
    }
    if (victim_model == nullptr) break;  // nothing left to evict: pinned versions hold the rest
    keep_clock_ = std::max(keep_clock_, lowest);
    const std::uint64_t size = victim_model->versions[victim].memory_bytes;
    versions_.evict(*victim_model, victim);
    ++budget_stats_->evictions;
    log::info("version_evicted",
              {{"model_id", victim_model->model_id},
               {"version", victim},
               {"memory_bytes", static_cast<std::int64_t>(size)},
               {"requests_since_load", static_cast<std::int64_t>(victim_requests)},
               {"budget_bytes", static_cast<std::int64_t>(budget_bytes_)}});
    used -= std::min(used, size);
  }
  budget_stats_->used_bytes = used;
}

Result<std::shared_ptr<const LoadedModel>> ModelRegistry::load_on_demand(
    const std::string& model_id, std::int64_t version) {
  std::lock_guard lock(sync_mu_);
  ModelState* model = find(model_id);
  const std::string which = "version " + std::to_string(version) + " of model '" + model_id + "'";
  if (model == nullptr) return NotFound(which + " is no longer in the repository");
  if (auto s = model->serving.find(version); s != model->serving.end()) return s->second;
  if (!model->cold.contains(version)) return Unavailable(which + " is no longer wanted");
  // Room first, by its size when it last loaded, else by its files' size.
  const VersionStatus& st = model->versions[version];
  const std::uint64_t estimate =
      st.memory_bytes != 0 ? st.memory_bytes
                           : version_files_size(root_ / model_id / std::to_string(version));
  make_room(estimate, model, version);
  const bool loaded = versions_.load_cold(*model, version);
  if (loaded) {
    ++budget_stats_->cold_loads;
    VersionStatus& now = model->versions[version];
    now.keep_base = keep_clock_;
    now.requests_at_load = requests_of(*model->serving.at(version));
  }
  // Measured now: if it came out larger than estimated, others make room after the fact.
  make_room(0, model, version);
  publish();
  if (!loaded) return Unavailable(which + " failed to load: " + model->versions[version].message);
  return model->serving.at(version);
}

void ModelRegistry::collect_retired() {
  publisher_.collect_retired();
  // Never waits for a load: that is what try_lock is for.
  std::unique_lock lock(sync_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  bool changed = false;
  for (auto& [id, model] : working_.models) changed = versions_.finish_unloading(model) || changed;
  if (changed) publish();
  // An evicted version's memory goes back to the system, not only to the allocator.
  if (changed && budget_bytes_ != 0) release_free_memory();
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
