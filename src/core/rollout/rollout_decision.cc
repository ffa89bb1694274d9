#include "core/rollout/rollout_decision.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace forklift {
namespace {

using Kind = RolloutDecision::Kind;

// p99 from fewer answers than this is the slowest answer, not a percentile.
constexpr std::uint64_t kMinRequestsForP99 = 100;

std::string percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", ratio * 100);
  return buf;
}

std::string millis(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", seconds * 1000);
  return buf;
}

std::string fixed(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", value);
  return buf;
}

RolloutDecision roll_back(std::string why) {
  return {Kind::kRollBack, std::move(why)};
}
RolloutDecision wait(std::string why) {
  return {Kind::kWait, std::move(why)};
}

std::string versions(const Rollout& r) {
  return "version " + std::to_string(r.candidate) + " against version " +
         std::to_string(r.baseline);
}

// The baseline over the canary's window (the same moments as the candidate's answers) when it
// has enough answers there, else over the whole rollout (a first step of 100%).
const VersionSample& canary_baseline(const Rollout& r, const RolloutSignals& s) {
  return s.baseline_canary.requests >= static_cast<std::uint64_t>(r.policy.guardrails.min_requests)
             ? s.baseline_canary
             : s.baseline;
}

// Failures beyond the baseline's ratio plus the allowed increase, with 95% confidence.
std::string error_guardrail(const Rollout& r, std::uint64_t errors, std::uint64_t n,
                            const char* what, const VersionSample& baseline) {
  const RolloutPolicy::Guardrails& g = r.policy.guardrails;
  if (n < static_cast<std::uint64_t>(g.min_requests)) return {};
  const double base = baseline.error_ratio();
  const double lower = wilson_lower(errors, n);
  if (lower <= base + g.max_error_ratio_increase) return {};
  return std::string("error ratio: ") + what + " of " + versions(r) + " failed " +
         std::to_string(errors) + " of " + std::to_string(n) + " (" +
         percent(static_cast<double>(errors) / static_cast<double>(n)) + ", at least " +
         percent(lower) + " with 95% confidence) against " + percent(base) +
         " on the baseline; the limit is +" + percent(g.max_error_ratio_increase);
}

// The candidate is slower when, with 95% confidence, more than 1% of its answers took longer
// than the limit (max_p99_ratio x the baseline's p99, and p99_slack_ms more than it): if both
// had the same latency, under 1% would. A p99 of a hundred answers is nearly their maximum, so
// comparing p99s alone would roll good versions back on one slow answer. Both sides are read
// from histogram buckets, conservatively: the baseline's p99 as the top of its bucket, the
// candidate's answers as the bottom of theirs, so a candidate is called slower only by what the
// buckets can tell apart (not 22 ms from 26 ms, both near the 25 ms bound).
std::string latency_guardrail(const Rollout& r, const RolloutSignals& s) {
  const RolloutPolicy::Guardrails& g = r.policy.guardrails;
  const VersionSample& baseline = canary_baseline(r, s);
  const std::uint64_t needed =
      std::max<std::uint64_t>(kMinRequestsForP99, static_cast<std::uint64_t>(g.min_requests));
  if (s.candidate.requests < needed || baseline.requests < needed) return {};
  const double base = baseline.p99_upper_bound_seconds();
  if (!std::isfinite(base)) return {};
  const double limit = std::max(base * g.max_p99_ratio, base + g.p99_slack_ms / 1000);
  const std::uint64_t slower = s.candidate.answers_at_least(limit);
  if (wilson_lower(slower, s.candidate.requests) <= 0.01) return {};
  return "p99 latency: " + versions(r) + ": " +
         percent(static_cast<double>(slower) / static_cast<double>(s.candidate.requests)) +
         " of its answers took at least " + millis(limit) + " (its p99 about " +
         millis(s.candidate.p99_seconds()) + ") while the baseline's p99 is at most " +
         millis(base) + "; the limit is " + fixed(g.max_p99_ratio) + "x and +" +
         fixed(g.p99_slack_ms) + " ms, which at most 1% may pass";
}

std::string quality_guardrail(const Rollout& r, const RolloutSignals& s) {
  const RolloutPolicy::Guardrails& g = r.policy.guardrails;
  if (g.quality_metric.empty()) return {};
  if (s.candidate_quality.labels < g.min_labels || s.baseline_quality.labels < g.min_labels) {
    return {};
  }
  const bool lower_is_better = g.quality_metric == "mae" || g.quality_metric == "log_loss";
  const double loss = lower_is_better ? s.candidate_quality.value - s.baseline_quality.value
                                      : s.baseline_quality.value - s.candidate_quality.value;
  if (!(loss > g.max_quality_loss)) return {};
  return "live quality: " + g.quality_metric + " of " + versions(r) + ": " +
         fixed(s.candidate_quality.value) + " over " + std::to_string(s.candidate_quality.labels) +
         " labels against " + fixed(s.baseline_quality.value) + " over " +
         std::to_string(s.baseline_quality.labels) + " (worse by " + fixed(loss) +
         "; the limit is " + fixed(g.max_quality_loss) + ")";
}

RolloutDecision decide_shadow(const Rollout& r, const RolloutSignals& s, double stage_seconds) {
  const RolloutPolicy::ShadowStage& sh = *r.policy.shadow;
  const RolloutPolicy::Guardrails& g = r.policy.guardrails;
  if (std::string why =
          error_guardrail(r, s.shadow.errors, s.shadow.predictions, "shadow copies", s.baseline);
      !why.empty()) {
    return roll_back(std::move(why));
  }
  const std::uint64_t rows = s.shadow.agree + s.shadow.disagree;
  const double allowed = 1 - sh.min_agreement;
  if (rows >= static_cast<std::uint64_t>(g.min_requests) &&
      wilson_lower(s.shadow.disagree, rows) > allowed) {
    return roll_back("shadow agreement: " + versions(r) + ": " + std::to_string(s.shadow.agree) +
                     " of " + std::to_string(rows) + " rows agree within " +
                     fixed(sh.agree_tolerance) + " (" +
                     percent(static_cast<double>(s.shadow.agree) / static_cast<double>(rows)) +
                     "); at least " + percent(sh.min_agreement) + " must");
  }
  if (r.phase != RolloutPhase::kRunning) return wait("paused");
  if (stage_seconds < sh.min_seconds) return wait("holding the shadow stage");
  // The stage passes only once its guardrails could have judged it.
  const auto needed = static_cast<std::uint64_t>(std::max(sh.min_requests, g.min_requests));
  if (s.shadow.predictions < needed) {
    return wait("waiting for " + std::to_string(needed - s.shadow.predictions) +
                " more shadow copies");
  }
  if (rows > 0 &&
      static_cast<double>(s.shadow.agree) / static_cast<double>(rows) < sh.min_agreement) {
    return wait("agreement below " + percent(sh.min_agreement) + " so far; collecting more rows");
  }
  if (s.shadow.predictions > 0 &&
      static_cast<double>(s.shadow.errors) / static_cast<double>(s.shadow.predictions) >
          s.baseline.error_ratio() + g.max_error_ratio_increase) {
    return wait("shadow error ratio above the limit so far; collecting more copies");
  }
  return {r.policy.canary.steps.empty() ? Kind::kPromote : Kind::kAdvance, {}};
}

RolloutDecision decide_canary(const Rollout& r, const RolloutSignals& s, double stage_seconds) {
  if (std::string why = error_guardrail(r, s.candidate.errors, s.candidate.requests, "answers",
                                        canary_baseline(r, s));
      !why.empty()) {
    return roll_back(std::move(why));
  }
  if (std::string why = latency_guardrail(r, s); !why.empty()) return roll_back(std::move(why));
  if (std::string why = quality_guardrail(r, s); !why.empty()) return roll_back(std::move(why));
  if (r.phase != RolloutPhase::kRunning) return wait("paused");
  const RolloutPolicy::Canary& c = r.policy.canary;
  const RolloutPolicy::Guardrails& g = r.policy.guardrails;
  if (stage_seconds < c.hold_seconds) return wait("holding " + r.stage_name());
  if (s.candidate_stage.requests < static_cast<std::uint64_t>(c.min_requests)) {
    return wait("waiting for " + std::to_string(c.min_requests - s.candidate_stage.requests) +
                " more answers from the candidate");
  }
  // No step passes before the error guardrail could have judged the candidate.
  const auto judged = static_cast<std::uint64_t>(r.policy.guardrails.min_requests);
  if (s.candidate.requests < judged) {
    return wait("waiting for " + std::to_string(judged - s.candidate.requests) +
                " more answers before the guardrails can judge");
  }
  if (s.candidate.error_ratio() >
      canary_baseline(r, s).error_ratio() + r.policy.guardrails.max_error_ratio_increase) {
    return wait("error ratio above the limit so far; collecting more answers");
  }
  const bool last = r.stage + 1 >= r.policy.stage_count();
  // With a quality guardrail, the promotion waits until it could judge (labels may arrive late).
  if (last && !g.quality_metric.empty() &&
      (s.candidate_quality.labels < g.min_labels || s.baseline_quality.labels < g.min_labels)) {
    return wait("waiting for " + std::to_string(g.min_labels) +
                " labels on each side before promoting");
  }
  return {last ? Kind::kPromote : Kind::kAdvance, {}};
}

}  // namespace

RolloutDecision decide(const Rollout& rollout, const RolloutSignals& signals,
                       double stage_seconds) {
  if (!rollout.active()) return wait("the rollout has ended");
  return rollout.in_shadow_stage() ? decide_shadow(rollout, signals, stage_seconds)
                                   : decide_canary(rollout, signals, stage_seconds);
}

std::vector<std::pair<std::string, double>> signal_summary(const Rollout& r,
                                                           const RolloutSignals& s) {
  std::vector<std::pair<std::string, double>> out;
  const auto add = [&](std::string name, double v) {
    if (std::isfinite(v)) out.emplace_back(std::move(name), v);
  };
  add("baseline_requests", static_cast<double>(s.baseline.requests));
  add("baseline_error_ratio", s.baseline.error_ratio());
  add("baseline_p99_ms", s.baseline.p99_seconds() * 1000);
  if (r.policy.shadow) {
    const std::uint64_t rows = s.shadow.agree + s.shadow.disagree;
    add("shadow_copies", static_cast<double>(s.shadow.predictions));
    add("shadow_errors", static_cast<double>(s.shadow.errors));
    if (rows > 0) add("shadow_agreement", static_cast<double>(s.shadow.agree) / rows);
  }
  if (!r.in_shadow_stage()) {
    add("candidate_requests", static_cast<double>(s.candidate.requests));
    add("candidate_error_ratio", s.candidate.error_ratio());
    add("candidate_p99_ms", s.candidate.p99_seconds() * 1000);
    add("stage_requests", static_cast<double>(s.candidate_stage.requests));
  }
  if (!r.policy.guardrails.quality_metric.empty()) {
    add("candidate_labels", static_cast<double>(s.candidate_quality.labels));
    add("baseline_labels", static_cast<double>(s.baseline_quality.labels));
    if (s.candidate_quality.labels > 0) add("candidate_quality", s.candidate_quality.value);
    if (s.baseline_quality.labels > 0) add("baseline_quality", s.baseline_quality.value);
  }
  return out;
}

}  // namespace forklift
