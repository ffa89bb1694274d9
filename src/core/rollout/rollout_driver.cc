#include "core/rollout/rollout_driver.h"

#include <algorithm>

#include "core/rollout/rollout_decision.h"
#include "observability/log.h"

namespace forklift {
namespace {

std::string lease_name(std::string_view model_id) {
  return "rollout:" + std::string(model_id);
}

}  // namespace

RolloutDriver::RolloutDriver(ModelRegistry& registry, MetricsRegistry& metrics, StateStore& store,
                             std::chrono::milliseconds tick, const QualitySource* quality)
    : registry_(registry), metrics_(metrics), store_(store), tick_(tick), quality_(quality) {}

RolloutDriver::~RolloutDriver() {
  for (const auto& [id, held] : held_) {
    if (held) store_.release_lease(lease_name(id));
  }
}

bool RolloutDriver::leased(const std::string& model_id) {
  const auto ttl = std::max<std::chrono::milliseconds>(tick_ * 5, std::chrono::seconds(2));
  auto held = store_.hold_lease(lease_name(model_id), ttl);
  const bool now = held.ok() && *held;
  bool& before = held_[model_id];
  if (now != before) {
    log::info(now ? "rollout_lease_taken" : "rollout_lease_lost",
              {{"model_id", model_id},
               {"store", store_.describe()},
               {"reason", held.ok() ? "" : held.status().message()}});
  }
  before = now;
  if (!now) tracking_.erase(model_id);  // another replica drives it: start afresh if it returns
  return now;
}

void RolloutDriver::tick() {
  const auto snapshot = registry_.snapshot();
  for (const auto& [id, model] : snapshot->models) {
    const std::optional<Rollout>& r = model.control.rollout;
    if (r && r->active()) {
      drive(model);
    } else {
      tracking_.erase(id);
      maybe_start(model);
    }
  }
  // Leases of models that left, or whose rollout ended, are given up.
  const auto now = registry_.snapshot();  // after this tick's own steps
  for (auto it = held_.begin(); it != held_.end();) {
    const auto m = now->models.find(it->first);
    const bool active =
        m != now->models.end() && m->second.control.rollout && m->second.control.rollout->active();
    if (!active) {
      if (it->second) store_.release_lease(lease_name(it->first));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

// A newest version whose model.yaml has a rollout policy, newer than production and never
// rolled out, starts its rollout.
void RolloutDriver::maybe_start(const ModelState& model) {
  if (model.control.unloaded || model.serving.empty()) return;
  const auto& [newest, loaded] = *model.serving.rbegin();
  if (!loaded->manifest.rollout) return;
  const std::vector<std::int64_t> production = model.primary_versions();
  if (production.size() != 1 || production.front() >= newest) return;
  if (model.control.rollout && model.control.rollout->candidate >= newest) return;
  if (const auto r = refused_.find(model.model_id); r != refused_.end() && r->second == newest) {
    return;
  }
  if (!leased(model.model_id)) return;
  auto started = registry_.start_rollout(model.model_id, newest, std::nullopt, kActor);
  if (!started.ok()) {
    refused_[model.model_id] = newest;
    log::error("rollout_not_started", {{"model_id", model.model_id},
                                       {"candidate", newest},
                                       {"reason", started.status().message()}});
  }
}

void RolloutDriver::enter_stage(Tracking& t, const Rollout& r, const VersionSample& candidate,
                                const VersionSample& baseline) {
  t.stage = r.stage;
  t.stage_start = candidate;
  if (!r.in_shadow_stage() && !t.canary_seen) {
    t.canary_seen = true;
    t.candidate_start = candidate;
    t.baseline_canary_start = baseline;
  }
}

RolloutSignals RolloutDriver::signals_for(const ModelState& model, const Rollout& r) {
  const VersionSample candidate = sample_of(*metrics_.version(model.model_id, r.candidate));
  const VersionSample baseline = sample_of(*metrics_.version(model.model_id, r.baseline));
  const ShadowSample shadow = sample_of(*metrics_.shadow(model.model_id, r.baseline, r.candidate));
  Tracking& t = tracking_[model.model_id];
  if (t.candidate != r.candidate || t.baseline != r.baseline ||
      t.started_unix_ms != r.started_unix_ms) {
    // A rollout this driver has not followed before (or one it takes over): windows start now.
    t = Tracking{r.candidate, r.baseline, r.started_unix_ms, r.stage,   !r.in_shadow_stage(),
                 baseline,    baseline,   candidate,         candidate, shadow};
  }
  if (t.stage != r.stage) enter_stage(t, r, candidate, baseline);  // another driver's step
  RolloutSignals s;
  s.candidate = candidate - t.candidate_start;
  s.candidate_stage = candidate - t.stage_start;
  s.baseline = baseline - t.baseline_start;
  s.baseline_canary = baseline - t.baseline_canary_start;
  s.shadow = shadow - t.shadow_start;
  const std::string& metric = r.policy.guardrails.quality_metric;
  if (quality_ != nullptr && !metric.empty()) {
    s.candidate_quality = quality_->quality(model.model_id, r.candidate, metric);
    s.baseline_quality = quality_->quality(model.model_id, r.baseline, metric);
  }
  return s;
}

void RolloutDriver::drive(const ModelState& model) {
  if (!leased(model.model_id)) return;
  const Rollout& r = *model.control.rollout;
  const RolloutSignals signals = signals_for(model, r);
  const double stage_seconds =
      static_cast<double>(now_unix_ms() - r.stage_started_unix_ms) / 1000.0;
  RolloutDecision decision = decide(r, signals, stage_seconds);
  // A candidate that stopped serving (its directory removed, a reload that failed and was
  // unloaded) cannot earn traffic: the rollout ends and traffic returns to the baseline.
  // A baseline that stopped serving leaves nothing to compare with or return to: the rollout
  // ends, and the version policy routes.
  if (!model.serving.contains(r.candidate)) {
    decision = {RolloutDecision::Kind::kRollBack,
                "version " + std::to_string(r.candidate) + " stopped serving"};
  } else if (!model.serving.contains(r.baseline)) {
    decision = {RolloutDecision::Kind::kRollBack,
                "version " + std::to_string(r.baseline) +
                    " (production) stopped serving; the version policy routes traffic"};
  }
  RolloutStep step = RolloutStep::kRollBack;
  switch (decision.kind) {
    case RolloutDecision::Kind::kWait:
      return;
    case RolloutDecision::Kind::kAdvance:
      step = RolloutStep::kAdvance;
      break;
    case RolloutDecision::Kind::kPromote:
      step = RolloutStep::kPromote;
      break;
    case RolloutDecision::Kind::kRollBack:
      step = RolloutStep::kRollBack;
      break;
  }
  auto done = registry_.step_rollout(model.model_id, step, kActor, decision.reason,
                                     signal_summary(r, signals), model.control.revision);
  if (!done.ok()) {
    // Changed meanwhile (a person, another replica) or not storable now: decided again next tick.
    log::warn("rollout_step_not_taken", {{"model_id", model.model_id},
                                         {"action", step_action(step)},
                                         {"reason", done.status().message()}});
    return;
  }
  // The new stage counts from now, not from the next tick.
  if (done->active()) {
    enter_stage(tracking_[model.model_id], *done,
                sample_of(*metrics_.version(model.model_id, r.candidate)),
                sample_of(*metrics_.version(model.model_id, r.baseline)));
  }
}

std::unique_ptr<PeriodicThread> start_rollout_driver(RolloutDriver& driver) {
  return std::make_unique<PeriodicThread>(driver.period(), [&driver] { driver.tick(); });
}

}  // namespace forklift
