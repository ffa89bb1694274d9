#include "core/model_state.h"

namespace forklift {

std::vector<std::int64_t> ModelState::primary_versions() const {
  std::vector<std::int64_t> out;
  if (!control.deployment.empty()) {
    for (const Route& r : control.deployment.routes) out.push_back(r.version);
  } else if (auto d = default_version()) {
    out.push_back(d->version);
  }
  return out;
}

bool RegistrySnapshot::ready() const {
  return initial_sync_done && unready_models().empty();
}

std::vector<std::string> RegistrySnapshot::unready_models() const {
  std::vector<std::string> out;
  for (const auto& [id, m] : models) {
    if (m.has_served && m.serving.empty() && m.cold.empty() && !m.control.unloaded) {
      out.push_back(id);
    }
  }
  return out;
}

Result<std::shared_ptr<const LoadedModel>> RegistrySnapshot::resolve(
    std::string_view model_id, std::optional<std::int64_t> version,
    std::string_view experiment_key) const {
  auto it = models.find(model_id);
  if (it == models.end()) return NotFound("unknown model '" + std::string(model_id) + "'");
  const ModelState& m = it->second;
  if (m.control.unloaded) return Unavailable("model '" + m.model_id + "' is unloaded");
  if (!version && !m.control.deployment.empty()) {
    // The registry keeps every routed version serving; should one have vanished from disk since,
    // fall through to the newest serving version rather than fail the request.
    const std::int64_t picked = pick_version(m.control.deployment, experiment_key);
    if (auto s = m.servable(picked)) return s;
  }
  if (!version) {
    if (auto d = m.default_version()) return d;
    return Unavailable("model '" + m.model_id + "' has no ready version yet");
  }
  if (auto s = m.servable(*version)) return s;
  std::string serving;
  for (const auto& [v, _] : m.serving) serving += (serving.empty() ? "" : ", ") + std::to_string(v);
  if (serving.empty()) serving = "none";
  const std::string which =
      "version " + std::to_string(*version) + " of model '" + m.model_id + "'";
  if (auto st = m.versions.find(*version); st != m.versions.end()) {
    if (st->second.state == VersionState::kLoading ||
        st->second.state == VersionState::kSelfTesting) {
      return Unavailable(which + " is still loading");
    }
    // The state only: why a version failed to load can quote its files, and data-plane
    // clients are not the repository's operators (the admin API shows the reason).
    return NotFound(which + " is not serving (" + std::string(to_string(st->second.state)) +
                    "); serving versions: " + serving);
  }
  return NotFound(which + " does not exist; serving versions: " + serving);
}

Result<bool> RegistrySnapshot::model_ready(std::string_view model_id,
                                           std::optional<std::int64_t> version) const {
  auto resolved = resolve(model_id, version);
  const auto model = models.find(model_id);
  if (model == models.end() || (version && !model->second.versions.contains(*version))) {
    return resolved.ok() ? NotFound("unknown model '" + std::string(model_id) + "'")
                         : resolved.status();
  }
  return resolved.ok();
}

}  // namespace forklift
