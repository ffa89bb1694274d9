#include "core/version_manager.h"

#include <algorithm>
#include <set>

#include "common/process_memory.h"
#include "core/version_files.h"
#include "observability/log.h"

namespace forklift {

VersionManager::VersionManager(std::filesystem::path root, MetricsRegistry& metrics,
                               std::function<void()> publish)
    : root_(std::move(root)), metrics_(metrics), publish_(std::move(publish)) {}

std::filesystem::path VersionManager::dir_of(const ModelState& model, std::int64_t version) const {
  return root_ / model.model_id / std::to_string(version);
}

// Whether `version` should be loaded now: never seen, unloaded, or rejected and its files have
// changed since (by content: a touch is not a change).
bool VersionManager::wants_load(ModelState& model, std::int64_t version) {
  if (model.serving.contains(version)) return false;
  auto it = model.versions.find(version);
  if (it == model.versions.end()) return true;
  VersionStatus& st = it->second;
  switch (st.state) {
    case VersionState::kUnloaded:
    case VersionState::kUnloading:
      return true;
    case VersionState::kFailed: {
      const std::filesystem::path dir = dir_of(model, version);
      std::string signature = version_files_signature(dir);
      if (signature == st.failed_stat) return false;
      if (st.failed_content != 0 && version_files_content(dir) == st.failed_content) {
        st.failed_stat = std::move(signature);  // touched, not changed
        return false;
      }
      log::info("version_files_changed", {{"model_id", model.model_id}, {"version", version}});
      return true;
    }
    case VersionState::kLoading:
    case VersionState::kSelfTesting:
    case VersionState::kReady:
      return false;
  }
  return false;
}

bool VersionManager::try_load(ModelState& model, std::int64_t version) {
  const bool seen = model.versions.contains(version);
  VersionStatus& status = model.versions[version];
  status.version = version;
  if (seen) {
    status.move_to(VersionState::kLoading);
  } else {
    status.state = VersionState::kLoading;  // a new version starts here
  }
  publish_();
  log::info("version_loading", {{"model_id", model.model_id}, {"version", version}});
  const std::filesystem::path dir = dir_of(model, version);
  const std::string before = version_files_signature(dir);
  const std::uint64_t memory_before = allocated_bytes_with_children();
  LoadOutcome outcome = load_version(dir, model.model_id, version, [&] {
    status.move_to(VersionState::kSelfTesting);
    publish_();
  });
  status.selftest = outcome.selftest;
  status.load_seconds = outcome.load_seconds;
  if (!outcome.loaded) {
    status.move_to(VersionState::kFailed, outcome.status.message());
    publish_();
    // Remembered, to try again once the files change. If they changed during the load, the
    // signature from before it is kept with no content: the next poll sees a difference and,
    // with no content to compare, tries again.
    if (std::string after = version_files_signature(dir); after == before) {
      status.failed_stat = std::move(after);
      status.failed_content = version_files_content(dir);
    } else {
      status.failed_stat = before;
      status.failed_content = 0;
    }
    log::error("version_rejected", {{"model_id", model.model_id},
                                    {"version", version},
                                    {"reason", status.message},
                                    {"load_seconds", outcome.load_seconds}});
    return false;
  }
  // What it cost: the memory it holds after its load (its python workers included), at least its
  // files' size. Loads are serialised, so the growth is this version's, give or take the
  // serving threads' churn.
  const std::uint64_t memory_after = allocated_bytes_with_children();
  status.memory_bytes = std::max<std::uint64_t>(
      memory_after > memory_before ? memory_after - memory_before : 0, version_files_size(dir));
  outcome.loaded->metrics = metrics_.version(model.model_id, version);
  if (outcome.loaded->batcher) outcome.loaded->batcher->set_metrics(outcome.loaded->metrics);
  status.move_to(VersionState::kReady);
  status.failed_stat.clear();
  status.failed_content = 0;
  status.draining.reset();
  model.serving[version] = std::move(outcome.loaded);
  model.cold.erase(version);
  model.has_served = true;  // from now on, losing every version makes the server unready
  status.engine = model.serving[version]->engine;
  if (status.engine.name.empty()) {
    log::info("version_ready",
              {{"model_id", model.model_id},
               {"version", version},
               {"selftests_passed", static_cast<std::int64_t>(status.selftest->passed)},
               {"load_seconds", outcome.load_seconds}});
    return true;
  }
  log::info("version_ready",
            {{"model_id", model.model_id},
             {"version", version},
             {"selftests_passed", static_cast<std::int64_t>(status.selftest->passed)},
             {"load_seconds", outcome.load_seconds},
             {"engine", status.engine.name},
             {"engine_note", status.engine.note}});
  return true;
}

void VersionManager::unload(ModelState& model, std::int64_t version, std::string why) {
  auto it = model.serving.find(version);
  if (it == model.serving.end()) return;
  VersionStatus& st = model.versions[version];
  st.draining = it->second;
  st.move_to(VersionState::kUnloading, why);
  log::info("version_unloaded",
            {{"model_id", model.model_id}, {"version", version}, {"reason", std::move(why)}});
  model.serving.erase(it);
}

void VersionManager::unload_all(ModelState& model, const std::string& why) {
  while (!model.serving.empty()) unload(model, model.serving.begin()->first, why);
}

bool VersionManager::finish_unloading(ModelState& model) {
  bool any = false;
  for (auto& [v, st] : model.versions) {
    if (st.state == VersionState::kUnloading && st.draining.expired()) {
      st.move_to(VersionState::kUnloaded, std::move(st.message));
      any = true;
    }
  }
  return any;
}

// Versions whose directory went away stop serving and are forgotten (the copy in memory is
// freed once its requests finish, like any other).
void VersionManager::forget_removed(ModelState& model, const std::set<std::int64_t>& disk) {
  for (auto it = model.serving.begin(); it != model.serving.end();) {
    const std::int64_t v = (it++)->first;
    if (!disk.contains(v)) unload(model, v, "its directory was removed");
  }
  std::erase_if(model.versions, [&](const auto& kv) { return !disk.contains(kv.first); });
  std::erase_if(model.cold, [&](const auto& kv) { return !disk.contains(kv.first); });
}

// The policy comes from the newest version whose manifest parses.
void VersionManager::read_policy(ModelState& model, const std::vector<std::int64_t>& on_disk) {
  model.policy = VersionPolicy{};
  model.hold_new_versions = false;
  model.pinned = false;
  for (auto v = on_disk.rbegin(); v != on_disk.rend(); ++v) {
    auto m = read_manifest(dir_of(model, *v));
    if (m.ok()) {
      model.policy = m->version_policy;
      // A version with a rollout policy earns traffic through its rollout, not at once.
      model.hold_new_versions = m->hold_new_versions || m->rollout.has_value();
      model.pinned = m->pinned;
      return;
    }
  }
}

// Serving already, or loaded now (if it should be loaded and passes).
bool VersionManager::serving_or_loaded(ModelState& model, std::int64_t version) {
  if (model.serving.contains(version)) return true;
  if (lazy(model)) {
    return model.cold.contains(version) ||
           (wants_load(model, version) && make_cold(model, version));
  }
  return wants_load(model, version) && try_load(model, version);
}

void VersionManager::set_cold_start(ColdStarter* starter,
                                    std::function<bool(const ModelState&)> lazy) {
  starter_ = starter;
  lazy_ = std::move(lazy);
}

// A placeholder from the version's manifest alone: routable, validated, loaded on first use.
bool VersionManager::make_cold(ModelState& model, std::int64_t version) {
  auto manifest = read_manifest(dir_of(model, version));
  VersionStatus& status = model.versions[version];
  const bool seen = status.version == version;
  status.version = version;
  if (!manifest.ok()) {
    if (seen && status.state != VersionState::kFailed) status.move_to(VersionState::kLoading);
    status.state = VersionState::kFailed;
    status.message = manifest.status().message();
    status.failed_stat = version_files_signature(dir_of(model, version));
    return false;
  }
  auto placeholder = cold_placeholder(*manifest, model.model_id, version, *starter_);
  placeholder->metrics = metrics_.version(model.model_id, version);
  model.cold[version] = std::move(placeholder);
  if (!seen) {
    status.state = VersionState::kUnloaded;  // a new version starts here under a budget
    status.message = "not in memory: loads on its first request (--memory-budget-mb)";
  }
  return true;
}

bool VersionManager::load_cold(ModelState& model, std::int64_t version) {
  if (model.serving.contains(version)) return true;
  if (!model.cold.contains(version)) return false;
  if (try_load(model, version)) return true;
  model.cold.erase(version);  // failed: requests get "not serving (failed)" until it changes
  return false;
}

void VersionManager::evict(ModelState& model, std::int64_t version) {
  auto it = model.serving.find(version);
  if (it == model.serving.end()) return;
  const std::shared_ptr<const LoadedModel> loaded = it->second;
  unload(model, version, "evicted: the memory budget needed room");
  auto placeholder = cold_placeholder(loaded->manifest, model.model_id, version, *starter_);
  placeholder->metrics = loaded->metrics;
  model.cold[version] = std::move(placeholder);
}

// What the version policy wants, loading it as needed.
std::set<std::int64_t> VersionManager::wanted_by_policy(ModelState& model,
                                                        const std::vector<std::int64_t>& on_disk,
                                                        const std::set<std::int64_t>& disk) {
  std::set<std::int64_t> wanted;
  switch (model.policy.kind) {
    case VersionPolicy::Kind::kLatest:
      // Newest first; a version that failed is skipped and the one before it keeps serving.
      for (auto v = on_disk.rbegin(); v != on_disk.rend(); ++v) {
        if (serving_or_loaded(model, *v)) return {*v};
      }
      break;
    case VersionPolicy::Kind::kAll:
      for (std::int64_t v : on_disk) {
        if (serving_or_loaded(model, v)) wanted.insert(v);
      }
      break;
    case VersionPolicy::Kind::kSpecific:
      for (std::int64_t v : model.policy.versions) {
        if (!disk.contains(v)) {
          log::warn("version_missing", {{"model_id", model.model_id}, {"version", v}});
        } else if (serving_or_loaded(model, v)) {
          wanted.insert(v);
        }
      }
      break;
  }
  return wanted;
}

std::optional<std::int64_t> VersionManager::sync(ModelState& model,
                                                 const std::vector<std::int64_t>& on_disk) {
  const std::set<std::int64_t> disk(on_disk.begin(), on_disk.end());
  forget_removed(model, disk);
  finish_unloading(model);
  const std::shared_ptr<const LoadedModel> previous_default = model.default_version();
  read_policy(model, on_disk);
  std::set<std::int64_t> wanted = wanted_by_policy(model, on_disk, disk);
  // Versions a deployment routes to or shadows with stay (or become) loaded whatever the policy.
  const Deployment& deployment = model.control.deployment;
  for (const Route& r : deployment.routes) {
    if (disk.contains(r.version) && serving_or_loaded(model, r.version)) wanted.insert(r.version);
  }
  for (const Shadow& sh : deployment.shadows) {
    if (disk.contains(sh.version) && serving_or_loaded(model, sh.version)) {
      wanted.insert(sh.version);
    }
  }
  // A running rollout keeps both its versions: at its 100% step the baseline takes no traffic,
  // but a rollback must find it ready.
  if (const auto& r = model.control.rollout; r && r->active()) {
    for (std::int64_t v : {r->baseline, r->candidate}) {
      if (disk.contains(v) && serving_or_loaded(model, v)) wanted.insert(v);
    }
  }
  // new_versions: hold. A newer version passed, but traffic stays on the one that served until
  // now (kept loaded, and pinned by the caller) until a promote.
  std::optional<std::int64_t> hold_at;
  if (model.hold_new_versions && deployment.empty() && previous_default && !wanted.empty() &&
      *wanted.rbegin() > previous_default->version &&
      model.serving.contains(previous_default->version)) {
    hold_at = previous_default->version;
    wanted.insert(*hold_at);
    log::info("version_held",
              {{"model_id", model.model_id}, {"version", *wanted.rbegin()}, {"serving", *hold_at}});
  }
  for (auto it = model.serving.begin(); it != model.serving.end();) {
    const std::int64_t v = (it++)->first;
    if (!wanted.contains(v)) unload(model, v, "not wanted by the version policy or the deployment");
  }
  std::erase_if(model.cold, [&](const auto& kv) { return !wanted.contains(kv.first); });
  return hold_at;
}

Status VersionManager::ensure_serving(ModelState& model, std::int64_t version) {
  if (model.serving.contains(version)) return Status::Ok();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_of(model, version), ec)) {
    return NotFound("model '" + model.model_id + "' has no version " + std::to_string(version));
  }
  const auto failed = [&] {
    return FailedPrecondition("version " + std::to_string(version) + " of model '" +
                              model.model_id +
                              "' failed to load: " + model.versions[version].message);
  };
  if (!wants_load(model, version)) return failed();  // rejected, and its files are unchanged
  if (!try_load(model, version)) return failed();
  return Status::Ok();
}

Status VersionManager::reload(ModelState& model, std::int64_t version, const AcceptCopy& accept) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_of(model, version), ec)) {
    return NotFound("model '" + model.model_id + "' has no version " + std::to_string(version));
  }
  const auto serving = model.serving.find(version);
  if (serving == model.serving.end()) {
    // Not in memory: load it as if new (a rejected version is tried again whatever its files).
    if (try_load(model, version)) return Status::Ok();
    return FailedPrecondition("version " + std::to_string(version) + " of model '" +
                              model.model_id +
                              "' failed to load: " + model.versions[version].message);
  }
  // A fresh copy beside the serving one; the state stays ready throughout.
  log::info("version_reloading", {{"model_id", model.model_id}, {"version", version}});
  LoadOutcome outcome = load_version(dir_of(model, version), model.model_id, version);
  VersionStatus& status = model.versions[version];
  if (!outcome.loaded) {
    log::error(
        "version_reload_failed",
        {{"model_id", model.model_id}, {"version", version}, {"reason", outcome.status.message()}});
    return FailedPrecondition(
        "the new copy of version " + std::to_string(version) + " of model '" + model.model_id +
        "' failed to load (the current copy keeps serving): " + outcome.status.message());
  }
  if (Status s = accept(*serving->second, *outcome.loaded); !s.ok()) return s;
  outcome.loaded->metrics = metrics_.version(model.model_id, version);
  if (outcome.loaded->batcher) outcome.loaded->batcher->set_metrics(outcome.loaded->metrics);
  status.selftest = outcome.selftest;
  status.load_seconds = outcome.load_seconds;
  serving->second = std::move(outcome.loaded);  // the old copy retires when its requests finish
  log::info(
      "version_reloaded",
      {{"model_id", model.model_id}, {"version", version}, {"load_seconds", outcome.load_seconds}});
  return Status::Ok();
}

}  // namespace forklift
