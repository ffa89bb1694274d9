// The built-in `python` runtime: a team writes `load(path)` and `predict(model, features)` in a
// model.py beside the artifact, and forklift calls them in an embedded CPython interpreter
// (pybind11), so any library the system Python has can serve: in the server's process, or with
// `runtime_options: {processes: N}` in N worker processes (python_workers.cc). The interpreter
// lives in a module, libforklift_python.so (python_embedded.cc), opened on the first version
// that needs it; this file checks which file to run and chooses where it runs.
//
//   def load(path):                 # path: the artifact named in model.yaml
//       return joblib.load(path)
//   def predict(model, features):   # features: {name: column}, one entry per row
//       X = numpy.column_stack([features[n] for n in NAMES])
//       return model.predict_proba(X)[:, 1]    # one output per row
//
// Columns: float features are float64 numpy arrays (NaN where missing), int ones int64 arrays,
// bool ones bool arrays, float_vector ones [rows, length] float32 arrays, string ones lists of
// str. predict returns a sequence (list, numpy array) with one output per row.
//
// The GIL: one interpreter runs one Python call at a time, so Python code uses about one core
// however many serving threads wait for it (numpy and scikit-learn release the GIL inside some
// of their C loops). Serving threads wait for the GIL with it released by everyone else; models
// in other runtimes are not affected. A Python exception answers that request with a 500 naming
// the model and the exception; it never takes the server down.
#include "runtimes/python_runtime.h"

#include <memory>
#include <string>

#include "common/file_util.h"
#include "core/repository.h"
#include "forklift/runtime.h"
#include "runtimes/python_module.h"
#include "runtimes/runtime_module.h"

namespace forklift {

Result<std::filesystem::path> python_module_file(const LoadContext& ctx) {
  const std::filesystem::path code = ctx.version_dir / ctx.option("module", "model.py");
  auto opened = open_regular_within(repository_of(ctx.version_dir), code);
  if (!opened.ok()) {
    return FailedPrecondition("runtime_options.module: " + opened.status().message() +
                              " (the python runtime calls load() and predict() from it)");
  }
  return opened->real_path;
}

namespace {

// The embedded interpreter's module, opened on the first version that needs it.
const Loader& python_module_loader() {
  static const Loader loader = module_loader(kPythonModuleFile, kPythonModuleEntry);
  return loader;
}

}  // namespace

Result<std::unique_ptr<Model>> load_through_module(const LoadContext& ctx) {
  auto module_path = python_module_file(ctx);
  if (!module_path.ok()) return module_path.status();
  LoadContext resolved = ctx;
  resolved.options["module"] = module_path->string();
  return python_module_loader()(resolved);
}

namespace {

Result<std::unique_ptr<Model>> load_python(const LoadContext& ctx) {
  const std::string option = ctx.option("processes", "1");
  long processes = 0;
  try {
    processes = std::stol(option);
  } catch (const std::exception&) {
  }
  if (processes < 1 || processes > 256) {
    return InvalidArgument("runtime_options.processes must be 1 to 256, not '" + option + "'");
  }
  if (processes == 1) return load_through_module(ctx);
  return start_worker_pool(ctx, static_cast<std::size_t>(processes));
}

}  // namespace

void register_python_runtime() {
  register_runtime(RuntimeInfo{"python", "python", load_python});
}

}  // namespace forklift
