// The built-in `python` runtime: a team writes `load(path)` and `predict(model, features)` in a
// model.py beside the artifact, and forklift calls them in a CPython interpreter embedded in the
// server process (pybind11), so any library the system Python has can serve.
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
#include <pybind11/embed.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtimes/runtime_registry.h"

namespace py = pybind11;

namespace forklift {
namespace {

// The process's one interpreter, started on first use and kept until the process exits:
// finalizing CPython while C++ objects may still hold Python references is not safe, and
// restarting it is not supported by many extension modules (numpy among them).
void ensure_interpreter() {
  static std::once_flag started;
  std::call_once(started, [] {
    // No Python signal handlers: forklift waits for SIGTERM itself.
    py::initialize_interpreter(/*init_signal_handlers=*/false);
    // Release the GIL that initialisation leaves with this thread, so every thread can take it.
    PyEval_SaveThread();
  });
}

// "ValueError: message" from a Python exception, without the traceback.
std::string describe(const py::error_already_set& e) {
  std::string message = e.what();
  if (auto cut = message.find("\n\nAt:"); cut != std::string::npos) message.resize(cut);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

class PythonModel final : public Model {
 public:
  PythonModel(py::object module, py::object state, const Schema& schema)
      : module_(std::move(module)), state_(std::move(state)), schema_(schema) {}

  ~PythonModel() override {
    // Dropping the last references runs Python code (destructors): it needs the GIL.
    py::gil_scoped_acquire gil;
    state_ = py::object();
    module_ = py::object();
  }

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    py::gil_scoped_acquire gil;
    try {
      py::object result = module_.attr("predict")(state_, columns(batch));
      return convert(result, batch.rows(), outputs);
    } catch (py::error_already_set& e) {
      return Internal("predict() in model.py raised " + describe(e));
    } catch (const std::exception& e) {
      return Internal(std::string("predict() in model.py failed: ") + e.what());
    }
  }

 private:
  py::dict columns(const Batch& batch) const {
    const std::size_t rows = batch.rows();
    const auto n = static_cast<py::ssize_t>(rows);
    py::dict features;
    for (std::size_t f = 0; f < schema_.features.size(); ++f) {
      const FeatureSpec& spec = schema_.features[f];
      py::object column;
      switch (spec.type) {
        case ValueType::kFloat: {
          py::array_t<double> a(n);
          auto view = a.mutable_unchecked<1>();
          for (std::size_t r = 0; r < rows; ++r) view(r) = std::get<double>(batch.row(r)[f]);
          column = std::move(a);
          break;
        }
        case ValueType::kInt: {
          py::array_t<std::int64_t> a(n);
          auto view = a.mutable_unchecked<1>();
          for (std::size_t r = 0; r < rows; ++r) view(r) = std::get<std::int64_t>(batch.row(r)[f]);
          column = std::move(a);
          break;
        }
        case ValueType::kBool: {
          py::array_t<bool> a(n);
          auto view = a.mutable_unchecked<1>();
          for (std::size_t r = 0; r < rows; ++r) view(r) = std::get<bool>(batch.row(r)[f]);
          column = std::move(a);
          break;
        }
        case ValueType::kFloatVector: {
          py::array_t<float> a({n, static_cast<py::ssize_t>(spec.length)});
          auto view = a.mutable_unchecked<2>();
          for (std::size_t r = 0; r < rows; ++r) {
            const auto& v = std::get<std::vector<float>>(batch.row(r)[f]);
            for (std::size_t i = 0; i < spec.length; ++i) view(r, i) = v[i];
          }
          column = std::move(a);
          break;
        }
        case ValueType::kString: {
          py::list l(rows);
          for (std::size_t r = 0; r < rows; ++r) {
            l[r] = py::str(std::get<std::string>(batch.row(r)[f]));
          }
          column = std::move(l);
          break;
        }
      }
      features[py::str(spec.name)] = std::move(column);
    }
    return features;
  }

  Status convert(const py::object& result, std::size_t rows, std::vector<Value>& outputs) const {
    const OutputSpec& out = schema_.output;
    if (!py::isinstance<py::sequence>(result) && !py::hasattr(result, "__len__")) {
      return Internal("predict() in model.py returned " +
                      std::string(py::str(result.get_type().attr("__name__"))) +
                      ", not a sequence with one output per row");
    }
    const std::size_t got = py::len(result);
    if (got != rows) {
      return Internal("predict() in model.py returned " + std::to_string(got) + " outputs for " +
                      std::to_string(rows) + " rows");
    }
    py::sequence items = py::reinterpret_borrow<py::sequence>(
        py::isinstance<py::sequence>(result) ? result : py::list(result));
    for (std::size_t r = 0; r < rows; ++r) {
      py::handle item = items[r];
      switch (out.type) {
        case ValueType::kFloat:
          outputs.emplace_back(item.cast<double>());
          break;
        case ValueType::kInt:
          outputs.emplace_back(item.cast<std::int64_t>());
          break;
        case ValueType::kBool:
          outputs.emplace_back(item.cast<bool>());
          break;
        case ValueType::kString:
          outputs.emplace_back(item.cast<std::string>());
          break;
        case ValueType::kFloatVector: {
          auto v = item.cast<std::vector<float>>();
          if (v.size() != out.length) {
            return Internal("predict() in model.py returned " + std::to_string(v.size()) +
                            " values in row " + std::to_string(r) + "; output '" + out.name +
                            "' has length " + std::to_string(out.length));
          }
          outputs.emplace_back(std::move(v));
          break;
        }
      }
    }
    return Status::Ok();
  }

  py::object module_;
  py::object state_;
  Schema schema_;
};

Result<std::unique_ptr<Model>> load_python(const LoadContext& ctx) {
  const std::filesystem::path code = ctx.version_dir / ctx.option("module", "model.py");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(code, ec)) {
    return FailedPrecondition(code.string() + ": missing (the python runtime calls load() and " +
                              "predict() from it)");
  }
  ensure_interpreter();
  py::gil_scoped_acquire gil;
  try {
    // Each version gets a module of its own name, so two versions never share state.
    const std::string name = "forklift_model_" + ctx.model_id + "_" + std::to_string(ctx.version);
    py::module_ util = py::module_::import("importlib.util");
    py::object spec = util.attr("spec_from_file_location")(name, code.string());
    py::object module = util.attr("module_from_spec")(spec);
    spec.attr("loader").attr("exec_module")(module);
    for (const char* fn : {"load", "predict"}) {
      if (!py::hasattr(module, fn)) {
        return FailedPrecondition(code.string() + ": defines no " + fn + "() function");
      }
    }
    py::object state = module.attr("load")(ctx.artifact.string());
    return std::unique_ptr<Model>(
        std::make_unique<PythonModel>(std::move(module), std::move(state), *ctx.schema));
  } catch (py::error_already_set& e) {
    return FailedPrecondition(code.string() + ": " + describe(e));
  }
}

}  // namespace

void register_python_runtime() {
  register_runtime(RuntimeInfo{"python", "python", load_python});
}

}  // namespace forklift
