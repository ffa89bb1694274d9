// The registry's background work, each a PeriodicThread (common/periodic_thread.h).
#pragma once

#include <functional>
#include <memory>

#include "common/periodic_thread.h"
#include "core/model_registry.h"

namespace forklift {

// Loads the repository once (at normal priority: nothing is served yet, and at idle priority any
// busy process on the machine would starve it), then, at idle priority, frees retired versions
// every 200 ms and rescans the repository every `poll_seconds` (0: never).
// `before_first`, if set, runs on the thread before the first load (a remote repository's first
// download, when there is no earlier mirror to serve).
std::unique_ptr<PeriodicThread> start_repository_poller(ModelRegistry& registry,
                                                        double poll_seconds,
                                                        std::function<void()> before_first = {});

// Applies the changes other replicas store to this registry as they arrive. A change that cannot
// be applied yet (a version whose files have not reached this replica) is retried.
std::unique_ptr<PeriodicThread> start_state_follower(ModelRegistry& registry, StateStore& store);

}  // namespace forklift
