// The python runtime's module, libforklift_python.so (python_embedded.cc): the embedded CPython
// interpreter and the models it runs, kept out of forklift's executable so that a server (or a
// container image) without Python models never loads libpython. python_runtime.cc opens it
// (runtime_module.h) in the server for in-process versions and in each worker process.
#pragma once

#include <cstddef>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/worker_protocol.h"

namespace forklift {

inline constexpr const char* kPythonModuleFile = "libforklift_python.so";
// Returns the load function (runtime_module.h's ModuleEntryFn); `<entry>_abi` the build string.
// The LoadContext it is given has runtime_options.module resolved to model.py's real path.
inline constexpr const char* kPythonModuleEntry = "forklift_python_loader";

// A worker process's request, its columns still in the message's bytes, predicted by a model the
// module's load function made.
using PythonPredictColumnsFn = Status (*)(const Model& model, std::size_t rows,
                                          const std::vector<worker::ColumnBytes>& columns,
                                          std::vector<Value>& outputs);
using PythonPredictColumnsEntryFn = PythonPredictColumnsFn (*)();
inline constexpr const char* kPythonPredictColumnsEntry = "forklift_python_predict_columns";

}  // namespace forklift
