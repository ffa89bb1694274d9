// Loading one version: manifest -> runtime -> artifact -> self-tests. Used by the server's registry
// and by `forklift selftest`, so both judge a version the same way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/batching_model.h"
#include "core/drift/drift_window.h"
#include "core/manifest.h"
#include "core/selftest.h"
#include "forklift/runtime.h"

namespace forklift {

struct VersionMetrics;

// One version in memory, ready to predict. Immutable once published; requests share it through
// std::shared_ptr, so an unloaded version is freed when its last in-flight request finishes.
struct LoadedModel {
  std::string model_id;
  std::int64_t version = 0;
  Manifest manifest;
  // manifest.schema, shared: requests' rows point at it, and a queued prediction event keeps it
  // (not the whole version) alive.
  std::shared_ptr<const Schema> schema;
  std::string platform;
  // The runtime's model inside its decorators: guarded, then with a deadline and batching when
  // the manifest asks (version_loader.cc gives the order and why). Call submit(), never assume
  // the answer comes before it returns.
  std::unique_ptr<Model> model;
  // `model` itself when the version batches requests (model.yaml's dynamic_batching), else null.
  const BatchingModel* batcher = nullptr;
  std::shared_ptr<VersionMetrics> metrics;
  // Live drift against the version's profile.json, when it ships one (core/drift/).
  std::shared_ptr<DriftWindow> drift;
  // The runtime's own model when it learns online (Model::learns), beneath the decorators that
  // `model` wraps it in: feedback labels reach it through this. Lives as long as `model`.
  const Model* learner = nullptr;
  // The runtime's own model beneath every decorator, for what only it offers: explanations
  // (Model::explain). Lives as long as `model`; null for a cold placeholder.
  const Model* runtime_model = nullptr;
  // Which engine of its runtime evaluates it, and why (Model::engine), taken before the
  // decorators hide the runtime's model.
  Model::Engine engine;
  // A placeholder for a version not in memory (a memory budget): `model` is a ColdStartModel,
  // which loads the real version on its first request (core/cold_start.h).
  bool cold = false;
};

struct LoadOutcome {
  std::shared_ptr<LoadedModel> loaded;  // null when the version was rejected
  Status status;                        // why it was rejected
  std::optional<SelfTestReport> selftest;
  double load_seconds = 0;
};

// `version_dir` is <repository>/<model id>/<version>: model.yaml, the artifact and
// selftest.jsonl must each resolve (symlinks followed) to a regular file inside <repository>.
// `on_selftesting`, if set, is called once the runtime has loaded and the self-tests start.
LoadOutcome load_version(const std::filesystem::path& version_dir, const std::string& model_id,
                         std::int64_t version, const std::function<void()>& on_selftesting = {});

// The version's manifest and runtime model (guarded, with its deadline) without its self-tests:
// only for a trainer writing the self-tests of a version it has just trained (training/). Never
// serve what this returns.
Result<std::shared_ptr<LoadedModel>> load_untested_version(const std::filesystem::path& version_dir,
                                                           const std::string& model_id,
                                                           std::int64_t version);

}  // namespace forklift
