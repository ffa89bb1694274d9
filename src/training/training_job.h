// One training job, start to end: snapshot the data -> split -> train -> evaluate against the
// parent version on the held-out rows -> write the new version (artifact, model.yaml, self-tests
// from held-out rows with the new model's outputs, profile.json, lineage.json) where no reader
// sees it -> check it loads and passes its self-tests as the server would -> publish it as the
// next version number in one rename. The server's repository poll then finds it, and a
// `rollout:` in its model.yaml hands it to the rollout controller.
//
// Used by `forklift train` (in the foreground) and by the server's job queue (job_queue.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "training/trainer.h"

namespace forklift::training {

struct JobRequest {
  std::filesystem::path repository;
  std::string model_id;
  std::string job_id;        // names the staging directory; [A-Za-z0-9_-]
  std::int64_t parent = 0;   // the version to compare with and start from; 0: the newest
  std::string postgres;      // conninfo for data.source postgres and events
  std::string code_version;  // recorded in the lineage
  int threads = 1;           // the trainer's threads when the spec does not set them
};

enum class JobResult { kPublished, kRefused, kFailed, kCancelled };
std::string_view to_string(JobResult result);

struct JobOutcome {
  JobResult result = JobResult::kFailed;
  std::string reason;        // why it was refused, failed or cancelled; what it published
  std::int64_t version = 0;  // the published version
  std::int64_t parent = 0;
  std::string metric;
  double candidate_metric = std::nan("");
  double parent_metric = std::nan("");
  std::string lineage_json;  // as written beside the new version
};

// Runs the job on this thread. `progress` and `log` are called on this thread; `cancel` is
// checked between rounds and between stages.
JobOutcome run_training_job(const JobRequest& request, const ProgressFn& progress, const LogFn& log,
                            const std::atomic<bool>* cancel);

}  // namespace forklift::training
