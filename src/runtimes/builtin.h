// The runtimes that ship inside forklift.
#pragma once

namespace forklift {

// Registers the built-in runtimes (xgboost, tree, constant; torchscript and python when built)
// into core's runtime table. Idempotent.
void register_builtin_runtimes();

// `forklift runtime-worker RUNTIME ...`: the body of a runtime's worker process (the python
// runtime's `processes` option starts them; nobody else should). Returns the exit code.
int run_runtime_worker(int argc, char** argv);

}  // namespace forklift
