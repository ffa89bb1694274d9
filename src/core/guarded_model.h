// The boundary between forklift and a runtime's code, written once: every version's model is
// wrapped in this guard as it loads (version_loader.cc), so the layers above it — self-tests,
// deadlines, batching, shadows, the inference service — receive a Status and never an exception,
// and can count on exactly one output per row.
#pragma once

#include <memory>

#include "forklift/runtime.h"

namespace forklift {

// Wraps a runtime's model. A thrown exception becomes Internal ("predict threw: ..."); a wrong
// number of outputs becomes Internal naming both counts, with nothing appended to `outputs`.
std::unique_ptr<Model> guarded(std::unique_ptr<Model> runtime_model);

}  // namespace forklift
