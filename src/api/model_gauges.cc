#include "api/model_gauges.h"

#include <string>

#include "common/json_writer.h"
#include "common/wall_clock.h"
#include "core/batching_model.h"
#include "observability/metrics.h"

namespace forklift {

void render_model_gauges(const RegistrySnapshot& snap, std::string& out) {
  // Autoscaling signals: work a replica holds now, per serving version.
  out += "# HELP forklift_requests_in_flight Predictions started and not yet answered.\n";
  out += "# TYPE forklift_requests_in_flight gauge\n";
  std::string queued;
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, loaded] : m.serving) {
      const std::string labels =
          "{model_id=\"" + prometheus_label(id) + "\",version=\"" + std::to_string(v) + "\"} ";
      out += "forklift_requests_in_flight" + labels +
             std::to_string(loaded->metrics ? loaded->metrics->in_flight.load() : 0) + "\n";
      if (loaded->batcher != nullptr) {
        queued += "forklift_batch_queue_depth" + labels +
                  std::to_string(loaded->batcher->queued_requests()) + "\n";
      }
    }
  }
  out += "# HELP forklift_batch_queue_depth Requests waiting in a batching version's queue.\n";
  out += "# TYPE forklift_batch_queue_depth gauge\n";
  out += queued;
  out += "# HELP forklift_model_versions_serving Versions of each model id taking traffic.\n";
  out += "# TYPE forklift_model_versions_serving gauge\n";
  for (const auto& [id, m] : snap.models) {
    out += "forklift_model_versions_serving{model_id=\"" + prometheus_label(id) + "\"} " +
           std::to_string(m.serving.size()) + "\n";
  }
  out += "# HELP forklift_model_version_state 1 for the state each version is in.\n";
  out += "# TYPE forklift_model_version_state gauge\n";
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, st] : m.versions) {
      out += "forklift_model_version_state{model_id=\"" + prometheus_label(id) + "\",version=\"" +
             std::to_string(v) + "\",state=\"" + std::string(to_string(st.state)) + "\"} 1\n";
    }
  }
  out +=
      "# HELP forklift_model_engine_info 1 for the engine evaluating each version in memory, "
      "for runtimes with more than one (xgboost: native or library).\n";
  out += "# TYPE forklift_model_engine_info gauge\n";
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, loaded] : m.serving) {
      if (loaded->engine.name.empty()) continue;
      out += "forklift_model_engine_info{model_id=\"" + prometheus_label(id) + "\",version=\"" +
             std::to_string(v) + "\",engine=\"" + prometheus_label(loaded->engine.name) + "\"} 1\n";
    }
  }
  out += "# HELP forklift_selftest_cases Self-test cases of each version by result.\n";
  out += "# TYPE forklift_selftest_cases gauge\n";
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, st] : m.versions) {
      if (!st.selftest) continue;
      const std::string labels =
          "model_id=\"" + prometheus_label(id) + "\",version=\"" + std::to_string(v) + "\"";
      out += "forklift_selftest_cases{" + labels + ",result=\"passed\"} " +
             std::to_string(st.selftest->passed) + "\n";
      out += "forklift_selftest_cases{" + labels + ",result=\"failed\"} " +
             std::to_string(st.selftest->cases - st.selftest->passed) + "\n";
    }
  }
  out += "# HELP forklift_selftest_passed 1 if the version passed its self-tests, else 0.\n";
  out += "# TYPE forklift_selftest_passed gauge\n";
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, st] : m.versions) {
      if (st.state == VersionState::kLoading || st.state == VersionState::kSelfTesting) continue;
      const bool passed = st.selftest && st.selftest->ok();
      out += "forklift_selftest_passed{model_id=\"" + prometheus_label(id) + "\",version=\"" +
             std::to_string(v) + "\"} " + (passed ? "1" : "0") + "\n";
    }
  }
  out += "# HELP forklift_model_load_duration_seconds Time to load and self-test each version.\n";
  out += "# TYPE forklift_model_load_duration_seconds gauge\n";
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, st] : m.versions) {
      if (st.state == VersionState::kLoading || st.state == VersionState::kSelfTesting) continue;
      std::string line = "forklift_model_load_duration_seconds{model_id=\"" + prometheus_label(id) +
                         "\",version=\"" + std::to_string(v) + "\"} ";
      json::append_double(line, st.load_seconds);
      out += line + "\n";
    }
  }
  std::string learned;
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, loaded] : m.serving) {
      if (loaded->learner == nullptr) continue;
      learned += "forklift_online_updates_total{model_id=\"" + prometheus_label(id) +
                 "\",version=\"" + std::to_string(v) + "\"} " +
                 std::to_string(loaded->learner->updates()) + "\n";
    }
  }
  if (!learned.empty()) {
    out +=
        "# HELP forklift_online_updates_total Labels each version that learns online has "
        "learned from since it was loaded.\n"
        "# TYPE forklift_online_updates_total counter\n" +
        learned;
  }
}

void render_rollout_gauges(const RegistrySnapshot& snap, std::string& out) {
  out +=
      "# HELP forklift_rollout_phase 1 for the phase of each model's current or last rollout.\n"
      "# TYPE forklift_rollout_phase gauge\n";
  for (const auto& [id, m] : snap.models) {
    if (!m.control.rollout) continue;
    const Rollout& r = *m.control.rollout;
    out += "forklift_rollout_phase{model_id=\"" + prometheus_label(id) + "\",candidate=\"" +
           std::to_string(r.candidate) + "\",baseline=\"" + std::to_string(r.baseline) +
           "\",phase=\"" + std::string(phase_name(r.phase)) + "\"} 1\n";
  }
  out +=
      "# HELP forklift_rollout_candidate_percent Share of traffic the rollout's candidate takes "
      "now (0 in the shadow stage).\n# TYPE forklift_rollout_candidate_percent gauge\n";
  for (const auto& [id, m] : snap.models) {
    if (!m.control.rollout || !m.control.rollout->active()) continue;
    std::string line =
        "forklift_rollout_candidate_percent{model_id=\"" + prometheus_label(id) + "\"} ";
    json::append_double(line, m.control.rollout->canary_percent());
    out += line + "\n";
  }
}

void render_drift_gauges(const RegistrySnapshot& snap, std::string& out) {
  const std::int64_t now = now_unix_ms();
  std::string psi, missing, output, rows;
  for (const auto& [id, m] : snap.models) {
    for (const auto& [v, loaded] : m.serving) {
      if (!loaded->drift) continue;
      const DriftReading d = loaded->drift->read(now);
      const std::string labels =
          "model_id=\"" + prometheus_label(id) + "\",version=\"" + std::to_string(v) + "\"";
      rows += "forklift_drift_window_rows{" + labels + "} " + std::to_string(d.rows) + "\n";
      for (const FeatureDrift& f : d.features) {
        const std::string fl = labels + ",feature=\"" + prometheus_label(f.name) + "\"} ";
        psi += "forklift_drift_psi{" + fl;
        json::append_double(psi, f.psi);
        psi += "\n";
        missing += "forklift_drift_missing_rate_change{" + fl;
        json::append_double(missing, f.missing_rate - f.reference_missing_rate);
        missing += "\n";
      }
      if (d.output_psi) {
        output += "forklift_drift_output_psi{" + labels + "} ";
        json::append_double(output, *d.output_psi);
        output += "\n";
      }
    }
  }
  out +=
      "# HELP forklift_drift_window_rows Rows of the last hour compared with the profile.\n"
      "# TYPE forklift_drift_window_rows gauge\n" +
      rows;
  out +=
      "# HELP forklift_drift_psi Population stability index of each feature over the last "
      "hour against the version's profile (0.1: a shift; 0.25: a large one).\n"
      "# TYPE forklift_drift_psi gauge\n" +
      psi;
  out +=
      "# HELP forklift_drift_missing_rate_change Each feature's missing rate over the last "
      "hour minus the profile's.\n# TYPE forklift_drift_missing_rate_change gauge\n" +
      missing;
  out +=
      "# HELP forklift_drift_output_psi Population stability index of the output over the "
      "last hour against the profile.\n# TYPE forklift_drift_output_psi gauge\n" +
      output;
}

}  // namespace forklift
