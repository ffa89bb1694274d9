// The life of one version, as one explicit state (TF Serving's LoaderHarness::State, Triton's
// ModelReadyState). Every change goes through VersionStatus::move_to, which knows the allowed
// transitions, so health, metrics, the admin API and the UI all read the same truth:
//
//   loading -> self-testing -> ready -> unloading -> unloaded
//      |            |            \_ (reload: a new copy loads beside it; ready throughout)
//      +------------+--> failed
//   failed, unloaded -> loading     (files changed, an explicit reload or load, a deployment)
//   unloading -> loading            (wanted again before the old copy was freed)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/selftest.h"

namespace forklift {

struct LoadedModel;

enum class VersionState {
  kLoading,      // manifest, artifact, runtime
  kSelfTesting,  // loaded; its self-tests are running
  kReady,        // passed: eligible for traffic (the deployment decides whether it gets any)
  kFailed,       // rejected: a bad manifest or artifact, or failed self-tests (message says)
  kUnloading,    // left the registry; requests that hold it are finishing
  kUnloaded,     // gone from memory (not wanted, removed from disk, or unloaded by an operator)
};

std::string_view to_string(VersionState state);
// Whether a version may go from `from` to `to` (the diagram above).
bool allowed_transition(VersionState from, VersionState to);

struct VersionStatus {
  std::int64_t version = 0;
  VersionState state = VersionState::kLoading;
  std::string message;  // why it failed or was unloaded (empty when ready)
  std::optional<SelfTestReport> selftest;
  double load_seconds = 0;
  // What loading it cost in memory, measured when it last loaded: the growth of this process's
  // allocated bytes and its child processes' resident bytes, at least its files' size.
  std::uint64_t memory_bytes = 0;
  // Which engine of its runtime served it when it last loaded, and why (Model::engine).
  Model::Engine engine;
  // Under a memory budget, when it was loaded on demand: the eviction clock then, and its
  // request count then (what it has served since is what it is worth).
  double keep_base = 0;
  std::uint64_t requests_at_load = 0;
  // What the version's files were when it failed (version_files.h): it is tried again only once
  // their content changes.
  std::string failed_stat;
  std::uint64_t failed_content = 0;
  // While unloading: the copy that left, until the last request holding it lets go.
  std::weak_ptr<const LoadedModel> draining;

  // Moves to `to` with `message`; a transition the diagram does not allow is a bug, logged as an
  // error (and made anyway, so the state stays the truth).
  void move_to(VersionState to, std::string why = {});
};

}  // namespace forklift
