// The python runtime's parts, shared by python_runtime.cc (the runtime, loading in the server
// through the module) and python_workers.cc (the worker processes).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

#include "forklift/runtime.h"

namespace forklift {

// The version's Python file (runtime_options.module, default model.py): it must resolve, symlinks
// followed, to a regular file inside the model repository, as every file of a version must.
Result<std::filesystem::path> python_module_file(const LoadContext& ctx);

// The version in this process, through the module (python_module.h), with model.py resolved by
// python_module_file: in the server, or in a worker process.
Result<std::unique_ptr<Model>> load_through_module(const LoadContext& ctx);

// The version in `processes` worker processes (python_workers.cc), a Model that sends each batch
// to an idle one.
Result<std::unique_ptr<Model>> start_worker_pool(const LoadContext& ctx, std::size_t processes);

}  // namespace forklift
