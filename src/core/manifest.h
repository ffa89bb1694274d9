// model.yaml: what one version of a model is, how to load it and what it accepts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/feedback/quality_spec.h"
#include "core/rollout/rollout_policy.h"
#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

// Which versions of a model id are loaded and may serve (as in TF Serving and Triton).
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  std::vector<std::int64_t> versions;  // for kSpecific
};

struct Manifest {
  std::string runtime;
  std::string artifact;  // file name relative to the version directory
  std::string description;
  Schema schema;
  VersionPolicy version_policy;
  // What a new version that passes its self-tests does: take traffic at once (promote), or wait
  // for a manual promote (hold). Read, like version_policy, from the newest version.
  bool hold_new_versions = false;
  // `memory: pinned`: under a memory budget (--memory-budget-mb), loaded at start and never
  // evicted; `on_demand` (the default) loads on the first request and may be evicted.
  bool pinned = false;
  // `engine`: auto (default), native or library, for a runtime with more than one way to
  // evaluate a model (the xgboost runtime: its native tree engine or the XGBoost library).
  std::string engine = "auto";
  std::map<std::string, std::string> runtime_options;
  // A prediction still running after this long is answered with an error (504) and counted;
  // 0: no limit. Each call then runs on a worker thread of the version (see core/deadline_model.h).
  std::int64_t timeout_ms = 0;
  // Dynamic batching (model.yaml's `dynamic_batching`): concurrent requests to one version are
  // predicted together, up to `max_batch_size` rows per runtime call, a request waiting at most
  // `max_queue_delay_us` for others to join. max_batch_size 0: off (see core/batching_model.h).
  struct Batching {
    std::size_t max_batch_size = 0;
    std::int64_t max_queue_delay_us = 0;
    std::size_t threads = 1;  // runtime calls of this version that may run at once
    // Requests that may wait in the queue; one more is refused at once (503, Retry-After)
    // instead of waiting behind a queue that only grows under overload.
    std::size_t max_queue_size = 1024;
  } batching;
  // How a new version earns traffic (model.yaml's `rollout:`): a version that has one is held
  // when it appears, and the rollout driver starts its rollout (core/rollout/).
  std::optional<RolloutPolicy> rollout;
  // How feedback labels score its predictions (model.yaml's `quality:`); none: they are not kept.
  QualitySpec quality;
};

// Parses <version dir>/model.yaml. Errors name the file and the field at fault.
Result<Manifest> parse_manifest(const std::filesystem::path& file);

// <version_dir>/model.yaml when it resolves to a regular file of at most kMaxManifestBytes inside
// the repository (repository_of(version_dir)): read from the file it checked, so no other file
// can take its place in between.
inline constexpr std::uintmax_t kMaxManifestBytes = 1 << 20;
Result<Manifest> read_manifest(const std::filesystem::path& version_dir);
// Same, from text; `origin` names the source in error messages.
Result<Manifest> parse_manifest_text(const std::string& yaml, const std::string& origin);

}  // namespace forklift
