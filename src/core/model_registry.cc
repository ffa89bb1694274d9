#include "core/model_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/repository.h"
#include "observability/log.h"

namespace forklift {

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
    if (m.serving.empty()) out.push_back(id);
  }
  return out;
}

Result<std::shared_ptr<const LoadedModel>> RegistrySnapshot::resolve(
    std::string_view model_id, std::optional<std::int64_t> version) const {
  auto it = models.find(model_id);
  if (it == models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  const ModelState& m = it->second;
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
    return NotFound(which + " is not serving (" + std::string(to_string(st->second.state)) +
                    (st->second.message.empty() ? "" : ": " + st->second.message) +
                    "); serving versions: " + serving);
  }
  return NotFound(which + " does not exist; serving versions: " + serving);
}

ModelRegistry::ModelRegistry(std::filesystem::path root, MetricsRegistry& metrics)
    : root_(std::move(root)), metrics_(metrics) {
  snapshot_ = std::make_shared<const RegistrySnapshot>();
}

void ModelRegistry::publish() {
  auto next = std::make_shared<const RegistrySnapshot>(working_);
  std::shared_ptr<const RegistrySnapshot> previous;
  {
    std::lock_guard lock(snapshot_mu_);
    previous = std::exchange(snapshot_, std::move(next));
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
  status.state = VersionState::kReady;
  status.message.clear();
  model.serving[version] = std::move(outcome.loaded);
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

  // The policy comes from the newest version whose manifest parses.
  model.policy = VersionPolicy{};
  for (auto v = on_disk.rbegin(); v != on_disk.rend(); ++v) {
    auto m = parse_manifest(root_ / model.model_id / std::to_string(*v) / "model.yaml");
    if (m.ok()) {
      model.policy = m->version_policy;
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
  for (const auto& s : skipped) log::warn("repository_entry_skipped", {{"reason", s}});
  std::set<std::string> present;
  for (const auto& dir : *scanned) {
    present.insert(dir.model_id);
    ModelState& model = working_.models[dir.model_id];
    model.model_id = dir.model_id;
    sync_model(model, dir.versions);
    publish();
  }
  std::erase_if(working_.models, [&](const auto& kv) { return !present.contains(kv.first); });
  working_.initial_sync_done = true;
  publish();
  return Status::Ok();
}

}  // namespace forklift
