// Queues training jobs by themselves, as each model's train.yaml `schedule:` says: when its
// newest version is `every_hours` old, after `after_labels` feedback labels, or when a serving
// version's features drift past `on_drift_psi`. And snapshots of versions that learn online
// (the `online` runtime), as their model.yaml's runtime_options say: after
// `snapshot_every_updates` labels (default 10000; 0: never) or every `snapshot_every_minutes`.
//
// Replicas sharing a PostgreSQL state store share the decision: a job is queued only by the
// replica that takes the model's training lease (StateStore::hold_lease, the database's clock),
// held for the whole period, so two replicas never run the same scheduled job.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "common/periodic_thread.h"
#include "core/feedback/feedback_service.h"
#include "core/model_registry.h"
#include "core/state_store.h"
#include "training/job_queue.h"

namespace forklift::training {

class JobScheduler {
 public:
  // `feedback` may be null (no label trigger).
  JobScheduler(JobQueue& jobs, const ModelRegistry& registry, StateStore& store,
               const FeedbackService* feedback, std::filesystem::path repository);

  // Looks at every model with a schedule once; `now_ms` is wall-clock time (Unix ms).
  void tick(std::int64_t now_ms);

 private:
  struct Seen {
    std::int64_t last_attempt_ms = 0;  // this process queued or left it to another replica
    std::uint64_t labels_at_last = 0;  // labels_joined() then
    bool labels_known = false;
    std::string spec_error;  // logged once per change
  };
  // Why a job is due now ("schedule", "labels", "drift"), or "" when none is.
  std::string due(const std::string& model_id, const ScheduleSpec& schedule, Seen& seen,
                  std::int64_t now_ms) const;
  double max_drift(const std::string& model_id, std::uint64_t min_rows, std::int64_t now_ms) const;
  // Queues the snapshots due: each model's newest serving version that learns online.
  void snapshot_learners(std::int64_t now_ms);
  struct Learning {
    std::uint64_t updates_at_last = 0;  // learner->updates() at its last snapshot
    std::int64_t last_ms = 0;
  };

  JobQueue& jobs_;
  const ModelRegistry& registry_;
  StateStore& store_;
  const FeedbackService* feedback_;
  std::filesystem::path repository_;
  std::map<std::string, Seen> seen_;  // the scheduler's thread only
  std::map<std::pair<std::string, std::int64_t>, Learning> learning_;  // likewise
};

std::unique_ptr<PeriodicThread> start_job_scheduler(JobScheduler& scheduler,
                                                    std::chrono::milliseconds period);

}  // namespace forklift::training
