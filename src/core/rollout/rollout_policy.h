// A rollout policy: how a new version earns production traffic (docs/reference/rollout-policy.md).
//
//   shadow      the candidate sees a copy of production traffic; its answers are compared and
//               never returned. Passes after `min_seconds` and `min_requests` copies, with at
//               least `min_agreement` of the rows within `agree_tolerance` of production's.
//   canary      steps of real traffic (e.g. 1% -> 10% -> 50% -> 100%), each held `hold_seconds`
//               and until the candidate answered `min_requests` in it.
//   guardrails  checked at every tick against the production (baseline) version; the first one
//               that trips rolls the candidate back.
//
// The same shape in model.yaml (`rollout:`) and in the admin API's JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift {

struct RolloutPolicy {
  struct ShadowStage {
    std::int64_t min_requests = 100;  // copies the candidate predicted
    double min_seconds = 30;
    double sample_rate = 1.0;  // fraction of production requests copied
    double agree_tolerance = 0.01;
    double min_agreement = 0.99;  // share of compared rows that must agree

    bool operator==(const ShadowStage&) const = default;
  };
  struct Canary {
    std::vector<double> steps = {1, 10, 50, 100};  // percent of traffic, increasing, last 100
    double hold_seconds = 60;
    std::int64_t min_requests = 100;  // the candidate's answers in each step

    bool operator==(const Canary&) const = default;
  };
  struct Guardrails {
    // Trips when the candidate's error ratio is, with 95% confidence, more than this above the
    // baseline's (0.01: one point).
    double max_error_ratio_increase = 0.01;
    // Trips when the candidate's p99 latency is above max_p99_ratio x the baseline's and more
    // than p99_slack_ms above it (so microsecond jitter never trips it).
    double max_p99_ratio = 1.5;
    double p99_slack_ms = 1.0;
    // Answers (and shadow copies) each side needs before a guardrail is judged; p99 needs at
    // least 100.
    std::int64_t min_requests = 50;
    // Live quality from feedback labels: trips when the candidate's metric is worse than the
    // baseline's by more than `max_quality_loss` once both have `min_labels` labels. Empty
    // metric: no quality guardrail.
    std::string quality_metric;  // "mae", "log_loss" (lower is better) or "accuracy", "auc"
    double max_quality_loss = 0.05;
    std::int64_t min_labels = 100;

    bool operator==(const Guardrails&) const = default;
  };

  std::optional<ShadowStage> shadow = ShadowStage{};  // nullopt: straight to canary
  Canary canary;
  Guardrails guardrails;

  bool operator==(const RolloutPolicy&) const = default;

  // Errors name the field at fault.
  Status validate() const;
  // Stage names in order: "shadow", "canary 1%", ..., "canary 100%".
  std::vector<std::string> stage_names() const;
  std::size_t stage_count() const { return (shadow ? 1 : 0) + canary.steps.size(); }
};

// {"shadow": {...} | false, "canary": {...}, "guardrails": {...}}; every field optional: one not
// given keeps its value in `base` (the defaults above, unless a caller overrides a version's own
// policy). Unknown fields are refused, so a misspelt name never silently does nothing.
Result<RolloutPolicy> parse_rollout_policy_json(std::string_view json,
                                                const RolloutPolicy& base = {});
void append_rollout_policy_json(std::string& out, const RolloutPolicy& policy);

}  // namespace forklift
