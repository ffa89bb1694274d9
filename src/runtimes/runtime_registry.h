// The process-wide table of runtimes by name (built-in ones and those that teams register).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "forklift/runtime.h"

namespace forklift {

// The runtime registered as `name`, or nullptr.
const RuntimeInfo* find_runtime(std::string_view name);
std::vector<std::string> runtime_names();

// Registers the runtimes that ship inside forklift (xgboost, ...). Idempotent.
void register_builtin_runtimes();

// `forklift runtime-worker RUNTIME ...`: the body of a runtime's worker process (the python
// runtime's `processes` option starts them; nobody else should). Returns the exit code.
int run_runtime_worker(int argc, char** argv);

}  // namespace forklift
