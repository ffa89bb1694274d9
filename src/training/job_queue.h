// The server's training jobs: a bounded queue, run by a configured number of threads at the
// lowest CPU priority (serving comes first), each job cancelable, with its progress, the held-out
// metric per round and its log lines kept for the admin API, the CLI and the UI.
//
// One job per model at a time: a second one for the same model is refused while the first is
// queued or running (both would train on the same data for the same parent).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/version_loader.h"
#include "forklift/status.h"
#include "training/training_job.h"

namespace forklift::training {

struct JobQueueOptions {
  std::filesystem::path repository;
  std::size_t max_queued = 16;             // waiting jobs; one more is refused
  std::size_t workers = 1;                 // jobs that run at once
  std::size_t history = 100;               // finished jobs kept (the oldest go first)
  std::size_t log_lines = 1000;            // per job: the first half and the last half are kept
  std::size_t max_history_points = 10000;  // held-out metric values per job
  std::string postgres;                    // for data.source postgres and events
  std::string code_version;
  int trainer_threads = 1;
  // The version in production for a model (its deployment's largest route, else the newest
  // serving version), 0 when none serves: a job asked for without a parent starts from it and
  // is judged against it. Unset: the newest version on disk.
  std::function<std::int64_t(const std::string&)> production_version;
  // Called on the job's thread after a job published a version, so the server loads it without
  // waiting for its repository poll; and before a training job starts, so that production is
  // judged from what the repository holds now.
  std::function<void(const std::string& model_id)> on_published;
  std::function<void(const std::string& model_id)> before_job;
};

enum class JobState { kQueued, kRunning, kPublished, kRefused, kFailed, kCancelled };
std::string_view to_string(JobState state);

// A job as the API shows it: a copy, taken under the queue's lock.
struct JobRecord {
  std::string id;
  std::string model_id;
  std::string actor;           // who asked
  std::string trigger;         // "manual", "schedule", "labels", "drift", "updates"
  std::string kind = "train";  // or "snapshot" (online_snapshot.h)
  JobState state = JobState::kQueued;
  std::int64_t parent = 0;                 // asked for (0: the newest), then the one used
  std::int64_t version = 0;                // published
  std::string created, started, finished;  // ISO 8601, "" until then
  Progress progress;
  std::vector<double> history;  // the held-out metric per round
  std::string reason;
  std::string metric;
  double holdout = std::nan("");
  double parent_holdout = std::nan("");
  bool cancel_requested = false;
};

class JobQueue {
 public:
  explicit JobQueue(JobQueueOptions options);
  ~JobQueue();  // cancels what runs, drops what waits, joins the workers
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues a job for `model_id`. Errors: the model has no train.yaml (NotFound), a job for it is
  // already queued or running (FailedPrecondition), the queue is full (Unavailable).
  Result<JobRecord> submit(const std::string& model_id, std::int64_t parent,
                           const std::string& actor, const std::string& trigger);
  // Queues a snapshot of `version`, a serving version that learns online. Errors as submit's
  // (but no train.yaml is needed).
  Result<JobRecord> submit_snapshot(std::shared_ptr<const LoadedModel> version,
                                    const std::string& actor, const std::string& trigger);
  std::vector<JobRecord> list() const;  // newest first
  std::optional<JobRecord> get(const std::string& id) const;
  std::optional<std::vector<std::string>> logs(const std::string& id) const;
  // A queued job ends at once; a running one stops at its next round or stage. NotFound for an
  // unknown id, FailedPrecondition for a job that has ended.
  Result<JobRecord> cancel(const std::string& id, const std::string& actor);
  // Whether a job for `model_id` is queued or running.
  bool active(const std::string& model_id) const;

 private:
  struct Job {
    JobRecord record;
    std::deque<std::string> log_head, log_tail;
    std::size_t log_dropped = 0;
    std::atomic<bool> cancel{false};
    std::shared_ptr<const LoadedModel> snapshot_of;  // a snapshot job's version
  };
  // Queues `job` (its record filled but for the id and times), under the queue's limits.
  Result<JobRecord> enqueue(std::shared_ptr<Job> job);
  void work();
  void run(const std::shared_ptr<Job>& job);
  void add_log(Job& job, const std::string& line);
  void retire_old();

  JobQueueOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // every job kept, by id
  std::deque<std::string> order_;                     // ids, oldest first
  std::uint64_t sequence_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;  // last: they start after everything they use
};

}  // namespace forklift::training
