// A model with a time limit (model.yaml's `timeout_ms`): each prediction runs on one of the
// version's worker threads while the caller waits at most the limit. A call that overruns is
// answered with DeadlineExceeded at once; the runtime's call goes on in the background (a
// thread cannot be stopped safely) on its own copy of the request, and its result is dropped.
//
// Costs a thread hop per prediction, so only versions that ask for a limit get one. If every
// worker is stuck in calls that never return, later calls time out too, and the version keeps
// failing until it is unloaded: other versions and models are not affected.
#pragma once

#include <chrono>
#include <memory>

#include "forklift/runtime.h"

namespace forklift {

// Wraps `inner` (shared with any call still running after the wrapper is gone). `workers` is
// the number of predictions of this version that may run at once.
std::unique_ptr<Model> with_deadline(std::shared_ptr<const Model> inner, const Schema& schema,
                                     std::chrono::milliseconds timeout, std::size_t workers);

}  // namespace forklift
