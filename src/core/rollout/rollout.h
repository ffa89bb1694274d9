// A rollout in progress (or the last one): which version replaces which, the stage it is in, and
// the timeline of its decisions. Part of a model's control state (control_state.h), so it is kept
// by the state store and every replica applies the same split.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/wall_clock.h"
#include "core/deployment.h"
#include "core/rollout/rollout_policy.h"

namespace forklift {

enum class RolloutPhase { kRunning, kPaused, kSucceeded, kRolledBack, kAborted };
std::string_view phase_name(RolloutPhase phase);

// One decision, for the timeline (admin API, UI, audit log).
struct RolloutRecord {
  std::string time;    // UTC, ISO 8601
  std::string stage;   // the stage it was taken in ("shadow", "canary 10%")
  std::string action;  // started, advanced, promoted, rolled_back, paused, resumed, aborted
  std::string actor;   // who: a person, or "forklift-rollout"
  std::string reason;
  std::vector<std::pair<std::string, double>> signals;  // what it was decided on

  bool operator==(const RolloutRecord&) const = default;
};

struct Rollout {
  std::int64_t candidate = 0;
  std::int64_t baseline = 0;  // production when it started; traffic returns there on rollback
  RolloutPolicy policy;
  RolloutPhase phase = RolloutPhase::kRunning;
  std::size_t stage = 0;  // index into policy.stage_names()
  std::int64_t started_unix_ms = 0;
  std::int64_t stage_started_unix_ms = 0;
  std::string reason;                   // why it ended
  std::vector<RolloutRecord> timeline;  // oldest first, at most kMaxRolloutTimeline

  bool operator==(const Rollout&) const = default;
  // Running or paused: it owns the model's deployment.
  bool active() const { return phase == RolloutPhase::kRunning || phase == RolloutPhase::kPaused; }
  bool in_shadow_stage() const { return policy.shadow.has_value() && stage == 0; }
  std::string stage_name() const;
  // The canary percent of the current stage (0 in the shadow stage).
  double canary_percent() const;
  void record(RolloutRecord entry);
};

inline constexpr std::size_t kMaxRolloutTimeline = 64;
// Canary weights are in hundredths of a percent: baseline first, candidate second, so a sticky
// key that reached the candidate stays there as the candidate's share grows (deployment.h).
inline constexpr std::uint32_t kCanaryWeightTotal = 10000;

// The deployment for the rollout's current stage, keeping `other_shadows` (shadows of versions
// the rollout does not involve). Finished rollouts: the candidate (succeeded) or the baseline.
Deployment rollout_deployment(const Rollout& rollout, const std::vector<Shadow>& other_shadows);
// The shadows of `deployment` that do not involve the rollout's versions.
std::vector<Shadow> unrelated_shadows(const Rollout& rollout, const Deployment& deployment);

// What a rollout can do next: the driver's decisions and a person's commands.
enum class RolloutStep { kAdvance, kPromote, kRollBack, kPause, kResume, kAbort };
// "rollout-advance", "rollout-promote", ...: the audit log's action.
std::string_view step_action(RolloutStep step);
// The rollout after `step`, its timeline entry recorded (with `signals`, when the driver
// decided). FailedPrecondition, saying why, when the step does not apply now (advancing a
// paused rollout, pausing one that ended).
Result<Rollout> next_rollout(const Rollout& now, RolloutStep step, std::string_view actor,
                             std::string reason,
                             std::vector<std::pair<std::string, double>> signals = {});

void append_rollout_json(std::string& out, const Rollout& rollout);
Result<Rollout> parse_rollout_json(std::string_view json);

}  // namespace forklift
