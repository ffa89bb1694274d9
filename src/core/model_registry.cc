#include "core/model_registry.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "common/json_writer.h"
#include "core/repository.h"
#include "core/schema_compat.h"
#include "observability/log.h"

namespace forklift {

namespace {

// Generation numbers are unique across registries, so a thread's cached snapshot can never be
// mistaken for another registry's (even one created at the same address).
std::atomic<std::uint64_t> g_next_generation{1};

// A thread's cached snapshot is weak: a thread that read a snapshot once and never again (the
// loader at start-up, an event loop with no traffic) must not keep it, and the versions only it
// holds, alive for the life of the server.
struct CachedSnapshot {
  const ModelRegistry* owner = nullptr;
  std::uint64_t generation = 0;
  std::weak_ptr<const RegistrySnapshot> snapshot;
};

}  // namespace

std::string_view to_string(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "loading";
    case VersionState::kReady:
      return "ready";
    case VersionState::kFailed:
      return "failed";
    case VersionState::kUnloaded:
      return "unloaded";
  }
  return "unknown";
}

bool RegistrySnapshot::ready() const {
  return initial_sync_done && unready_models().empty();
}

std::vector<std::string> RegistrySnapshot::unready_models() const {
  std::vector<std::string> out;
  for (const auto& [id, m] : models) {
    if (m.required_for_readiness && m.serving.empty() && !m.unloaded) out.push_back(id);
  }
  return out;
}

Result<std::shared_ptr<const LoadedModel>> RegistrySnapshot::resolve(
    std::string_view model_id, std::optional<std::int64_t> version,
    std::string_view experiment_key) const {
  auto it = models.find(model_id);
  if (it == models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  const ModelState& m = it->second;
  if (m.unloaded) return Unavailable("model '" + m.model_id + "' is unloaded");
  if (!version && !m.deployment.empty()) {
    // The registry keeps every routed version serving; should one have vanished from disk since,
    // fall through to the newest serving version rather than fail the request.
    if (auto s = m.serving.find(pick_version(m.deployment, experiment_key)); s != m.serving.end()) {
      return s->second;
    }
  }
  if (!version) {
    if (auto d = m.default_version()) return d;
    return Unavailable("model '" + m.model_id + "' has no ready version yet");
  }
  if (auto s = m.serving.find(*version); s != m.serving.end()) return s->second;
  std::string serving;
  for (const auto& [v, _] : m.serving) serving += (serving.empty() ? "" : ", ") + std::to_string(v);
  if (serving.empty()) serving = "none";
  const std::string which =
      "version " + std::to_string(*version) + " of model '" + m.model_id + "'";
  if (auto st = m.versions.find(*version); st != m.versions.end()) {
    if (st->second.state == VersionState::kLoading) return Unavailable(which + " is still loading");
    // The state only: why a version failed to load can quote its files, and data-plane
    // clients are not the repository's operators (the admin API shows the reason).
    return NotFound(which + " is not serving (" + std::string(to_string(st->second.state)) +
                    "); serving versions: " + serving);
  }
  return NotFound(which + " does not exist; serving versions: " + serving);
}

ModelRegistry::ModelRegistry(std::filesystem::path root, MetricsRegistry& metrics,
                             std::shared_ptr<StateStore> store)
    : root_(std::move(root)),
      metrics_(metrics),
      store_(store ? std::move(store) : std::make_shared<MemoryStateStore>()) {
  load_state();
  snapshot_ = std::make_shared<const RegistrySnapshot>();
  generation_.store(g_next_generation.fetch_add(1), std::memory_order_release);
}

std::shared_ptr<const RegistrySnapshot> ModelRegistry::snapshot() const {
  thread_local CachedSnapshot cache;
  const std::uint64_t generation = generation_.load(std::memory_order_acquire);
  if (cache.owner == this && cache.generation == generation) {
    // One atomic operation, as copying a shared_ptr would be. Empty only when the snapshot was
    // replaced and freed since this thread's last call: then the generation moved too.
    if (auto current = cache.snapshot.lock()) return current;
  }
  std::lock_guard lock(snapshot_mu_);
  cache.snapshot = snapshot_;
  cache.owner = this;
  cache.generation = generation_.load(std::memory_order_relaxed);
  return snapshot_;
}

void ModelRegistry::publish() {
  auto next = std::make_shared<const RegistrySnapshot>(working_);
  std::shared_ptr<const RegistrySnapshot> previous;
  {
    std::lock_guard lock(snapshot_mu_);  // a pointer swap: readers rarely wait, never long
    previous = std::exchange(snapshot_, next);
    generation_.store(g_next_generation.fetch_add(1), std::memory_order_release);
  }
  std::lock_guard retired_lock(retired_mu_);
  retired_snapshots_.push_back(previous);
  // Versions in the previous snapshot but not in the next are retired: keep a reference so the
  // last one is dropped by collect_retired on this side, not by a serving thread.
  for (const auto& [id, m] : previous->models) {
    const auto now = next->models.find(id);
    for (const auto& [v, loaded] : m.serving) {
      const bool kept = now != next->models.end() && now->second.serving.contains(v) &&
                        now->second.serving.at(v) == loaded;
      if (!kept) retired_.push_back(loaded);
    }
  }
  // `previous` (and any version only it kept alive) is released here, outside the lock.
}

bool ModelRegistry::try_load(ModelState& model, std::int64_t version) {
  VersionStatus& status = model.versions[version];
  status.version = version;
  status.state = VersionState::kLoading;
  publish();
  log::info("version_loading", {{"model_id", model.model_id}, {"version", version}});
  LoadOutcome outcome =
      load_version(root_ / model.model_id / std::to_string(version), model.model_id, version);
  status.selftest = outcome.selftest;
  status.load_seconds = outcome.load_seconds;
  if (!outcome.loaded) {
    status.state = VersionState::kFailed;
    status.message = outcome.status.message();
    log::error("version_rejected", {{"model_id", model.model_id},
                                    {"version", version},
                                    {"reason", status.message},
                                    {"load_seconds", outcome.load_seconds}});
    return false;
  }
  outcome.loaded->metrics = metrics_.version(model.model_id, version);
  if (outcome.loaded->batcher) outcome.loaded->batcher->set_metrics(outcome.loaded->metrics);
  status.state = VersionState::kReady;
  status.message.clear();
  model.serving[version] = std::move(outcome.loaded);
  model.required_for_readiness = true;  // it has served: losing every version makes it unready
  log::info("version_ready",
            {{"model_id", model.model_id},
             {"version", version},
             {"selftests_passed", static_cast<std::int64_t>(status.selftest->passed)},
             {"load_seconds", outcome.load_seconds}});
  return true;
}

void ModelRegistry::sync_model(ModelState& model, const std::vector<std::int64_t>& on_disk) {
  // Versions whose directory went away stop serving and are forgotten.
  const std::set<std::int64_t> disk(on_disk.begin(), on_disk.end());
  std::erase_if(model.serving, [&](const auto& kv) { return !disk.contains(kv.first); });
  std::erase_if(model.versions, [&](const auto& kv) { return !disk.contains(kv.first); });

  const std::shared_ptr<const LoadedModel> previous_default = model.default_version();
  // The policy comes from the newest version whose manifest parses.
  model.policy = VersionPolicy{};
  model.hold_new_versions = false;
  for (auto v = on_disk.rbegin(); v != on_disk.rend(); ++v) {
    auto m = read_manifest(root_ / model.model_id / std::to_string(*v));
    if (m.ok()) {
      model.policy = m->version_policy;
      model.hold_new_versions = m->hold_new_versions;
      break;
    }
  }
  const auto needs_load = [&](std::int64_t v) {
    auto it = model.versions.find(v);
    return it == model.versions.end() || it->second.state == VersionState::kUnloaded;
  };

  std::set<std::int64_t> wanted;
  switch (model.policy.kind) {
    case VersionPolicy::Kind::kLatest:
      // Newest first; a version that failed is skipped and the one before it keeps serving.
      for (auto v = on_disk.rbegin(); v != on_disk.rend(); ++v) {
        if (model.serving.contains(*v) || (needs_load(*v) && try_load(model, *v))) {
          wanted.insert(*v);
          break;
        }
      }
      break;
    case VersionPolicy::Kind::kAll:
      for (std::int64_t v : on_disk) {
        if (model.serving.contains(v) || (needs_load(v) && try_load(model, v))) wanted.insert(v);
      }
      break;
    case VersionPolicy::Kind::kSpecific:
      for (std::int64_t v : model.policy.versions) {
        if (!disk.contains(v)) {
          log::warn("version_missing", {{"model_id", model.model_id}, {"version", v}});
          continue;
        }
        if (model.serving.contains(v) || (needs_load(v) && try_load(model, v))) wanted.insert(v);
      }
      break;
  }
  // Versions a deployment routes to or shadows with stay (or become) loaded whatever the
  // policy says.
  std::vector<std::int64_t> deployed;
  for (const Route& r : model.deployment.routes) deployed.push_back(r.version);
  for (const Shadow& sh : model.deployment.shadows) deployed.push_back(sh.version);
  for (std::int64_t v : deployed) {
    if (!disk.contains(v)) continue;
    if (model.serving.contains(v) || (needs_load(v) && try_load(model, v))) wanted.insert(v);
  }
  // new_versions: hold. A newer version passed, but traffic stays where it was until a promote:
  // pin the deployment to the version that served until now (kept loaded by the pin).
  if (model.hold_new_versions && model.deployment.empty() && previous_default && !wanted.empty() &&
      *wanted.rbegin() > previous_default->version &&
      model.serving.contains(previous_default->version)) {
    const std::int64_t held = *wanted.rbegin();
    ModelControl next = model.control();
    next.deployment = Deployment::of({{previous_default->version, 1}});
    next.revision = model.revision + 1;
    wanted.insert(previous_default->version);
    if (Status s = commit(model, next, "forklift", "hold", "policy", next.deployment.describe());
        !s.ok()) {
      // Pinned here all the same, so traffic does not move; the stored state (perhaps another
      // replica's identical pin) replaces this one when it arrives.
      log::warn("hold_not_stored", {{"model_id", model.model_id}, {"reason", s.message()}});
      model.deployment = next.deployment;
    }
    log::info(
        "version_held",
        {{"model_id", model.model_id}, {"version", held}, {"serving", previous_default->version}});
  }
  for (auto it = model.serving.begin(); it != model.serving.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    VersionStatus& st = model.versions[it->first];
    st.state = VersionState::kUnloaded;
    st.message = "not wanted by the version policy";
    log::info("version_unloaded", {{"model_id", model.model_id}, {"version", it->first}});
    it = model.serving.erase(it);
  }
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
    ModelState& model = working_.models[dir.model_id];
    if (model.model_id.empty()) {
      model.model_id = dir.model_id;
      if (auto st = stored_.find(dir.model_id); st != stored_.end()) adopt(model, st->second);
    }
    if (!working_.initial_sync_done && !dir.versions.empty()) model.required_for_readiness = true;
    if (model.unloaded) continue;
    sync_model(model, dir.versions);
    publish();
  }
  std::erase_if(working_.models, [&](const auto& kv) { return !present.contains(kv.first); });
  working_.initial_sync_done = true;
  publish();
  return Status::Ok();
}

Status ModelRegistry::ensure_serving(ModelState& model, std::int64_t version) {
  if (model.serving.contains(version)) return Status::Ok();
  std::error_code ec;
  if (!std::filesystem::is_directory(root_ / model.model_id / std::to_string(version), ec)) {
    return NotFound("model '" + model.model_id + "' has no version " + std::to_string(version));
  }
  auto st = model.versions.find(version);
  if (st != model.versions.end() && st->second.state == VersionState::kFailed) {
    return FailedPrecondition("version " + std::to_string(version) + " of model '" +
                              model.model_id + "' failed to load: " + st->second.message);
  }
  if (!try_load(model, version)) {
    return FailedPrecondition("version " + std::to_string(version) + " of model '" +
                              model.model_id +
                              "' failed to load: " + model.versions[version].message);
  }
  return Status::Ok();
}

Result<Deployment> ModelRegistry::apply(ModelState& model, Deployment next, std::string_view actor,
                                        std::string_view action, History history, bool force) {
  if (Status s = next.validate(); !s.ok()) return s;
  // The versions taking default traffic now, whose callers the new deployment must not break.
  std::vector<std::shared_ptr<const LoadedModel>> current;
  if (model.deployment.empty()) {
    if (auto d = model.default_version()) current.push_back(d);
  } else {
    for (const Route& r : model.deployment.routes) {
      if (auto it = model.serving.find(r.version); it != model.serving.end()) {
        current.push_back(it->second);
      }
    }
  }
  // Versions loaded only to check this change; if it is refused they leave again, so that a
  // refused change never moves traffic (the newest serving version is the policy default).
  std::vector<std::int64_t> loaded_here;
  const auto refuse = [&](Status why) {
    for (std::int64_t v : loaded_here) {
      model.serving.erase(v);
      model.versions[v].state = VersionState::kUnloaded;
      model.versions[v].message = "loaded for a deployment change that was refused";
    }
    publish();  // show versions marked failed on the way
    return why;
  };
  std::vector<std::int64_t> needed;
  for (const Route& r : next.routes) needed.push_back(r.version);
  for (const Shadow& sh : next.shadows) needed.push_back(sh.version);
  for (std::int64_t v : needed) {
    const bool was_serving = model.serving.contains(v);
    if (Status s = ensure_serving(model, v); !s.ok()) return refuse(s);
    if (!was_serving) loaded_here.push_back(v);
  }
  if (!force) {
    std::string problems;
    for (const Route& r : next.routes) {
      const LoadedModel& candidate = *model.serving.at(r.version);
      for (const auto& now : current) {
        if (now->version == r.version) continue;
        const auto breaks = schema_breaks(now->manifest.schema, candidate.manifest.schema);
        if (breaks.empty()) continue;
        problems += (problems.empty() ? "" : "; ") + std::string("version ") +
                    std::to_string(r.version) + " vs version " + std::to_string(now->version) +
                    " (serving now): ";
        for (std::size_t i = 0; i < breaks.size(); ++i) problems += (i ? ", " : "") + breaks[i];
      }
    }
    // A shadow receives the primary's requests: it must not need anything they lack.
    std::vector<std::shared_ptr<const LoadedModel>> primaries;
    for (const Route& r : next.routes) primaries.push_back(model.serving.at(r.version));
    if (primaries.empty()) primaries = current;
    for (const Shadow& sh : next.shadows) {
      const LoadedModel& shadow = *model.serving.at(sh.version);
      for (const auto& primary : primaries) {
        std::string gaps;
        for (const std::string& b :
             schema_breaks(primary->manifest.schema, shadow.manifest.schema)) {
          if (b.starts_with("drops")) continue;  // extra features are simply not passed on
          gaps += (gaps.empty() ? "" : ", ") + b;
        }
        if (gaps.empty()) continue;
        problems += (problems.empty() ? "" : "; ") + std::string("shadow version ") +
                    std::to_string(sh.version) + " cannot read the requests of version " +
                    std::to_string(primary->version) + ": " + gaps;
      }
    }
    if (!problems.empty()) {
      return refuse(FailedPrecondition("the change would break callers of model '" +
                                       model.model_id + "': " + problems +
                                       ". Force it if callers are ready."));
    }
  }
  ModelControl control = model.control();
  if (history == History::kPush) {
    control.history.push_back(model.deployment);
    if (control.history.size() > kMaxDeploymentHistory) {
      control.history.erase(control.history.begin());
    }
  } else if (!control.history.empty()) {
    control.history.pop_back();
  }
  control.deployment = std::move(next);
  control.revision = model.revision + 1;
  if (Status s = commit(model, control, actor, action, model.deployment.describe(),
                        control.deployment.describe());
      !s.ok()) {
    return refuse(s);
  }
  publish();
  return model.deployment;
}

Status ModelRegistry::commit(ModelState& model, ModelControl next, std::string_view actor,
                             std::string_view action, std::string before, std::string after) {
  AuditEntry entry{now_iso8601(),       std::string(actor), model.model_id,
                   std::string(action), std::move(before),  std::move(after)};
  if (Status s = store_->commit(model.model_id, next, entry); !s.ok()) {
    log::error("state_not_stored", {{"model_id", model.model_id},
                                    {"action", entry.action},
                                    {"store", store_->describe()},
                                    {"reason", s.message()}});
    return s;
  }
  stored_[model.model_id] = next;
  adopt(model, next);
  log::info("deployment_changed", {{"model_id", model.model_id},
                                   {"action", entry.action},
                                   {"actor", entry.actor},
                                   {"before", entry.before},
                                   {"after", entry.after},
                                   {"revision", next.revision}});
  return Status::Ok();
}

void ModelRegistry::adopt(ModelState& model, const ModelControl& control) {
  model.deployment = control.deployment;
  model.history = control.history;
  model.unloaded = control.unloaded;
  model.revision = control.revision;
}

Result<Deployment> ModelRegistry::set_deployment(std::string_view model_id, Deployment deployment,
                                                 std::string_view actor, std::string_view action,
                                                 bool force) {
  std::lock_guard lock(sync_mu_);
  auto it = working_.models.find(model_id);
  if (it == working_.models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  return apply(it->second, std::move(deployment), actor, action, History::kPush, force);
}

Result<Deployment> ModelRegistry::promote(std::string_view model_id, std::int64_t version,
                                          std::string_view actor, bool force) {
  std::lock_guard lock(sync_mu_);
  auto it = working_.models.find(model_id);
  if (it == working_.models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  Deployment next = Deployment::of({{version, 1}});
  for (const Shadow& sh : it->second.deployment.shadows) {
    if (sh.version != version) next.shadows.push_back(sh);
  }
  return apply(it->second, std::move(next), actor, "promote", History::kPush, force);
}

Result<Deployment> ModelRegistry::rollback(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  auto it = working_.models.find(model_id);
  if (it == working_.models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  ModelState& model = it->second;
  if (model.history.empty()) {
    return FailedPrecondition("model '" + model.model_id + "' has no earlier deployment");
  }
  Deployment previous = model.history.back();
  // Rolling back returns to what callers used before, so it is never refused for its schema.
  return apply(model, previous, actor, "rollback", History::kPop, true);
}

Status ModelRegistry::unload_model(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  auto it = working_.models.find(model_id);
  if (it == working_.models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  ModelState& model = it->second;
  ModelControl next = model.control();
  next.unloaded = true;
  next.revision = model.revision + 1;
  if (Status s = commit(model, next, actor, "unload", model.deployment.describe(), "unloaded");
      !s.ok()) {
    return s;
  }
  for (const auto& [v, _] : model.serving) {
    model.versions[v].state = VersionState::kUnloaded;
    model.versions[v].message = "model unloaded through the admin API";
  }
  model.serving.clear();
  log::info("model_unloaded", {{"model_id", model.model_id}, {"actor", actor}});
  publish();
  return Status::Ok();
}

Status ModelRegistry::load_model(std::string_view model_id, std::string_view actor) {
  std::lock_guard lock(sync_mu_);
  if (!is_valid_model_id(model_id))
    return NotFound("unknown model '" + std::string(model_id) + "'");
  auto scanned = scan_repository(root_);
  if (!scanned.ok()) return scanned.status();
  const auto dir = std::find_if(scanned->begin(), scanned->end(),
                                [&](const ModelDirectory& d) { return d.model_id == model_id; });
  if (dir == scanned->end()) {
    return NotFound("model '" + std::string(model_id) + "' is not in the repository");
  }
  ModelState& model = working_.models[dir->model_id];
  if (model.model_id.empty()) {
    model.model_id = dir->model_id;
    if (auto st = stored_.find(dir->model_id); st != stored_.end()) adopt(model, st->second);
  }
  if (model.unloaded) {
    ModelControl next = model.control();
    next.unloaded = false;
    next.revision = model.revision + 1;
    if (Status s = commit(model, next, actor, "load", "unloaded", model.deployment.describe());
        !s.ok()) {
      return s;
    }
    log::info("model_loaded", {{"model_id", model.model_id}, {"actor", actor}});
  }
  sync_model(model, dir->versions);
  publish();
  if (model.serving.empty()) {
    return FailedPrecondition("model '" + model.model_id +
                              "' has no version that loads and passes its self-tests");
  }
  return Status::Ok();
}

void ModelRegistry::collect_retired() {
  std::vector<std::shared_ptr<const LoadedModel>> free_now;
  std::vector<std::shared_ptr<const RegistrySnapshot>> free_snapshots;
  {
    std::lock_guard lock(retired_mu_);
    // Snapshots first: freeing one may leave a retired version with no other holder.
    for (auto& s : retired_snapshots_) {
      if (s.use_count() == 1) free_snapshots.push_back(std::move(s));
    }
    std::erase(retired_snapshots_, nullptr);
  }
  free_snapshots.clear();
  {
    std::lock_guard lock(retired_mu_);
    for (auto& m : retired_) {
      if (m.use_count() == 1) free_now.push_back(std::move(m));
    }
    std::erase(retired_, nullptr);
  }
  // Destroyed here, outside the lock, on the calling (loader or admin) thread.
  free_now.clear();
}

Result<std::vector<AuditEntry>> ModelRegistry::audit() const {
  return store_->audit(kMaxAuditEntries);
}

Status ModelRegistry::apply_remote(std::string_view model_id, const ModelControl& control) {
  std::lock_guard lock(sync_mu_);
  auto known = stored_.find(model_id);
  if (known != stored_.end() && known->second.revision >= control.revision) return Status::Ok();
  auto it = working_.models.find(model_id);
  if (it == working_.models.end()) {
    stored_[std::string(model_id)] = control;  // not on disk here: applied when it appears
    return Status::Ok();
  }
  ModelState& model = it->second;
  const auto not_applied = [&](const Status& why) {
    log::error(
        "remote_change_not_applied",
        {{"model_id", model.model_id}, {"revision", control.revision}, {"reason", why.message()}});
    return why;
  };
  if (control.unloaded) {
    adopt(model, control);
    for (const auto& [v, _] : model.serving) {
      model.versions[v].state = VersionState::kUnloaded;
      model.versions[v].message = "model unloaded through the admin API (another replica)";
    }
    model.serving.clear();
  } else {
    // Load what the change routes to before it takes effect, so no request meets a version
    // that is not serving here.
    for (const Route& r : control.deployment.routes) {
      if (Status s = ensure_serving(model, r.version); !s.ok()) return not_applied(s);
    }
    for (const Shadow& sh : control.deployment.shadows) {
      if (Status s = ensure_serving(model, sh.version); !s.ok()) return not_applied(s);
    }
    const bool was_unloaded = model.unloaded;
    adopt(model, control);
    if (was_unloaded) {
      auto scanned = scan_repository(root_);
      if (scanned.ok()) {
        for (const auto& dir : *scanned) {
          if (dir.model_id == model.model_id) sync_model(model, dir.versions);
        }
      }
    }
  }
  stored_[model.model_id] = control;
  log::info(
      "remote_change_applied",
      {{"model_id", model.model_id},
       {"revision", control.revision},
       {"deployment", control.unloaded ? std::string("unloaded") : control.deployment.describe()}});
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
