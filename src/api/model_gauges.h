// The /metrics gauges read from the registry's snapshot (the counters live in
// observability/metrics.h): each model's versions and self-tests, rollouts, and drift.
#pragma once

#include <string>

#include "core/model_state.h"

namespace forklift {

// Versions serving, each version's state, self-test results and load time.
void render_model_gauges(const RegistrySnapshot& snap, std::string& out);
// Each model's current or last rollout: its phase, and a running one's candidate share.
void render_rollout_gauges(const RegistrySnapshot& snap, std::string& out);
// Drift of the last hour against each serving version's profile.json.
void render_drift_gauges(const RegistrySnapshot& snap, std::string& out);

}  // namespace forklift
