// Drives rollouts: every tick, for each model whose rollout is running (or whose newest version
// has a rollout policy and has not been rolled out yet), it takes the model's lease in the state
// store, reads the candidate's and the baseline's signals from the metrics, decides
// (rollout_decision.h) and applies the step through the registry.
//
// With a shared state store (PostgreSQL) every replica runs a driver, but only the one holding a
// model's lease acts on it; if that replica dies its lease expires and another takes over. Steps
// are stored with the revision they were decided on, so even two drivers that both believed they
// held the lease could not both apply one. Every replica routes per the stored stage.
//
// Signals are this replica's own traffic (each replica sees a share of it); a driver that takes
// over starts its windows afresh, while the stage's hold time runs on from when it began.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/periodic_thread.h"
#include "core/model_registry.h"
#include "core/rollout/rollout_signals.h"
#include "core/state_store.h"
#include "observability/metrics.h"

namespace forklift {

class RolloutDriver {
 public:
  // The actor named in the audit log for the driver's own steps.
  static constexpr std::string_view kActor = "forklift-rollout";

  // `tick`: how often it decides; a lease lasts five ticks (at least 2 s).
  RolloutDriver(ModelRegistry& registry, MetricsRegistry& metrics, StateStore& store,
                std::chrono::milliseconds tick, const QualitySource* quality = nullptr);
  ~RolloutDriver();  // gives up the leases it holds
  RolloutDriver(const RolloutDriver&) = delete;
  RolloutDriver& operator=(const RolloutDriver&) = delete;

  // One pass over every model: what the thread does each tick (tests call it directly).
  void tick();
  std::chrono::milliseconds period() const { return tick_; }

 private:
  // Where this replica's windows start, per model.
  struct Tracking {
    std::int64_t candidate = 0;
    std::int64_t baseline = 0;
    std::int64_t started_unix_ms = 0;
    std::size_t stage = 0;
    bool canary_seen = false;
    VersionSample baseline_start;
    VersionSample baseline_canary_start;
    VersionSample candidate_start;
    VersionSample stage_start;
    ShadowSample shadow_start;
  };

  void drive(const ModelState& model);
  void maybe_start(const ModelState& model);
  bool leased(const std::string& model_id);
  RolloutSignals signals_for(const ModelState& model, const Rollout& rollout);
  static void enter_stage(Tracking& t, const Rollout& rollout, const VersionSample& candidate,
                          const VersionSample& baseline);

  ModelRegistry& registry_;
  MetricsRegistry& metrics_;
  StateStore& store_;
  const std::chrono::milliseconds tick_;
  const QualitySource* quality_;
  std::map<std::string, Tracking, std::less<>> tracking_;  // the tick's thread only
  std::map<std::string, bool, std::less<>> held_;          // leases held at the last tick
  // (model, version) whose automatic start was refused: not tried again every tick.
  std::map<std::string, std::int64_t, std::less<>> refused_;
};

// Runs driver.tick() every driver.period() on a thread of its own.
std::unique_ptr<PeriodicThread> start_rollout_driver(RolloutDriver& driver);

}  // namespace forklift
