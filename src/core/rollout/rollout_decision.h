// What a rollout does next, given its signals: wait, advance a stage, promote, or roll back.
// A pure function of its inputs, so every rule is unit-tested (rollout_decision_test.cc);
// the driver (rollout_driver.h) reads the signals and applies the decision.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/rollout/rollout.h"
#include "core/rollout/rollout_signals.h"

namespace forklift {

struct RolloutDecision {
  enum class Kind { kWait, kAdvance, kPromote, kRollBack };
  Kind kind = Kind::kWait;
  // Rollback: the guardrail that tripped, with its figures. Wait: what the stage still needs.
  std::string reason;
};

// Guardrails first (while running or paused), then whether the stage is complete (running
// only). `stage_seconds`: how long the current stage has run.
RolloutDecision decide(const Rollout& rollout, const RolloutSignals& signals, double stage_seconds);

// The figures a decision was taken on, for the timeline: requests, error ratios, p99s,
// agreement, quality.
std::vector<std::pair<std::string, double>> signal_summary(const Rollout& rollout,
                                                           const RolloutSignals& signals);

}  // namespace forklift
