// What the control plane decides per model id, apart from what is on disk: the deployment, its
// history (for rollback), whether the model was unloaded, and the audit log of every change.
// This is what a state store keeps and what replicas share.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/deployment.h"
#include "core/rollout/rollout.h"
#include "forklift/status.h"

namespace forklift {

struct ModelControl {
  Deployment deployment;            // empty: the version policy decides
  std::vector<Deployment> history;  // earlier deployments, newest last (for rollback)
  bool unloaded = false;            // unloaded through the admin API: serves nothing until loaded
  // Bumped by every stored change. Replicas compare it to tell a newer state from one they have
  // applied, and a change based on an older revision is refused (optimistic concurrency).
  std::int64_t revision = 0;
  // The running rollout, or the last one (kept so that it is not started again, and for its
  // timeline). While active it owns `deployment` (core/rollout/).
  std::optional<Rollout> rollout;

  bool operator==(const ModelControl&) const = default;
};

// One control-plane change, for the audit log.
struct AuditEntry {
  std::string time;  // UTC, ISO 8601
  std::string actor;
  std::string model_id;
  std::string action;  // deploy, promote, rollback, hold, load, unload, reload, rollout-*
  std::string before;  // Deployment::describe()
  std::string after;
  std::string reason;  // why, when forklift acted by itself (a rollout's guardrail); may be empty
};

struct ControlState {
  std::map<std::string, ModelControl, std::less<>> models;
  std::vector<AuditEntry> audit;  // oldest first
};

inline constexpr std::size_t kMaxDeploymentHistory = 20;
inline constexpr std::size_t kMaxAuditEntries = 1000;

// The current time as "2026-11-27T04:25:25Z".
std::string now_iso8601();

// {"time", "actor", "model_id", "action", "before", "after", "reason"}: the state file and the
// admin API.
void append_audit_json(std::string& out, const AuditEntry& entry);
// {"deployment": {...}, "history": [...], "unloaded": false, "revision": 3, "rollout": {...}}
void append_model_control_json(std::string& out, const ModelControl& control);
Result<ModelControl> parse_model_control_json(std::string_view json);

// The state file: {"format": 1, "models": {"<id>": <model control>}, "audit": [...]}.
std::string control_state_to_json(const ControlState& state);
Result<ControlState> parse_control_state_json(std::string_view json);

}  // namespace forklift
