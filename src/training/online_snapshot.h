// A model that learns online (the `online` runtime) changes with every label; a snapshot makes
// its state as it is now a new version, so that it passes the same gates as every version
// (self-tests at load, a rollout when model.yaml has one) and can be rolled back like one.
//
// The new version: the snapshot as its artifact, its parent's model.yaml (and other files, and
// profile.json), the parent's self-test inputs with the snapshot's own outputs, and a
// lineage.json that says how many labels it learned from. Staged and published as a training
// job's version is (staged_version.h).
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "core/version_loader.h"
#include "training/training_job.h"

namespace forklift::training {

struct SnapshotRequest {
  std::filesystem::path repository;
  std::shared_ptr<const LoadedModel> version;  // serving, with a learner
  std::string job_id;
  std::string reason;  // why now: "after 10000 updates", "asked by ana"
  std::string code_version;
};

JobOutcome run_snapshot_job(const SnapshotRequest& request, const ProgressFn& progress,
                            const LogFn& log, const std::atomic<bool>* cancel);

}  // namespace forklift::training
