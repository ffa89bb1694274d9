// The python runtime's embedded interpreter, in a module of its own (libforklift_python.so,
// python_module.h) that forklift opens the first time a version runs Python in the server's
// process or in a worker process: a server, or an image, without Python models never loads
// libpython. The runtime itself, its worker processes included, is python_runtime.cc.
#include <dlfcn.h>
#include <pybind11/embed.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "forklift/runtime.h"
#include "runtimes/python_module.h"
#include "runtimes/runtime_module.h"   // the entry points' types
#include "runtimes/worker_protocol.h"  // ColumnBytes only: the module calls nothing of forklift's

namespace py = pybind11;

namespace forklift {
namespace {

// The process's one interpreter, started on first use and kept until the process exits:
// finalizing CPython while C++ objects may still hold Python references is not safe, and
// restarting it is not supported by many extension modules (numpy among them).
void ensure_interpreter() {
  static std::once_flag started;
  std::call_once(started, [] {
    // This module was opened RTLD_LOCAL, and so was libpython with it; but extension modules
    // (numpy's) are built without a link to libpython and expect its symbols to be global.
    // Promote it: the library that holds Py_Initialize, already loaded, made RTLD_GLOBAL.
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&Py_Initialize), &info) == 0 ||
        info.dli_fname == nullptr ||
        ::dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == nullptr) {
      throw std::runtime_error("cannot make libpython's symbols global for extension modules");
    }
    // The interpreter forklift was built with, whatever the environment: left to itself,
    // CPython finds its standard library from the first `python3` on PATH, and another one
    // there (a pyenv or virtualenv) made the server load a different version's library.
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;  // forklift waits for SIGTERM itself
    PyStatus status =
        PyConfig_SetBytesString(&config, &config.program_name, FORKLIFT_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(status)) {
      status = PyConfig_SetBytesString(&config, &config.home, FORKLIFT_PYTHON_HOME);
    }
    if (PyStatus_Exception(status)) {
      PyConfig_Clear(&config);
      throw std::runtime_error("cannot configure the Python interpreter");
    }
    py::initialize_interpreter(&config, 0, nullptr, /*add_program_dir_to_path=*/false);
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
    return call_predict([&] { return columns(batch); }, batch.rows(), outputs);
  }

  // A worker process's request, its columns still in the message's bytes: each becomes one
  // array, copied once (worker_protocol.h).
  Status predict_columns(std::size_t rows, const std::vector<worker::ColumnBytes>& columns,
                         std::vector<Value>& outputs) const {
    py::gil_scoped_acquire gil;
    return call_predict([&] { return columns_of(rows, columns); }, rows, outputs);
  }

 private:
  template <class MakeColumns>
  Status call_predict(MakeColumns&& make_columns, std::size_t rows,
                      std::vector<Value>& outputs) const {
    try {
      py::object result = module_.attr("predict")(state_, make_columns());
      return convert(result, rows, outputs);
    } catch (py::error_already_set& e) {
      return Internal("predict() in model.py raised " + describe(e));
    } catch (const std::exception& e) {
      return Internal(std::string("predict() in model.py failed: ") + e.what());
    }
  }

  // One array per fixed-size column, its bytes copied as they are (little-endian, as numpy's
  // native order here); strings as a list of str, as in process.
  static py::dict columns_of(std::size_t rows, const std::vector<worker::ColumnBytes>& columns) {
    const auto n = static_cast<py::ssize_t>(rows);
    py::dict features;
    for (const worker::ColumnBytes& c : columns) {
      const FeatureSpec& spec = *c.spec;
      py::object column;
      const auto copy_into = [&](py::array a) {
        std::memcpy(a.mutable_data(), c.bytes.data(), c.bytes.size());  // sizes: split_request
        column = std::move(a);
      };
      switch (spec.type) {
        case ValueType::kFloat:
          copy_into(py::array_t<double>(n));
          break;
        case ValueType::kInt:
          copy_into(py::array_t<std::int64_t>(n));
          break;
        case ValueType::kBool:
          copy_into(py::array_t<bool>(n));  // bytes 0 or 1: split_request
          break;
        case ValueType::kFloatVector:
          copy_into(py::array_t<float>({n, static_cast<py::ssize_t>(spec.length)}));
          break;
        case ValueType::kString: {
          py::list l(rows);
          std::string_view in = c.bytes;
          for (std::size_t r = 0; r < rows; ++r) {
            std::uint32_t size = 0;
            std::memcpy(&size, in.data(), sizeof size);
            l[r] = py::str(in.data() + sizeof size, size);
            in.remove_prefix(sizeof size + size);
          }
          column = std::move(l);
          break;
        }
      }
      features[py::str(spec.name)] = std::move(column);
    }
    return features;
  }

  // Feature `f` of every row of `batch`, whose values are all T, as one numpy array.
  template <class T>
  static py::array_t<T> scalar_column(const Batch& batch, std::size_t f) {
    py::array_t<T> a(static_cast<py::ssize_t>(batch.rows()));
    auto view = a.template mutable_unchecked<1>();
    for (std::size_t r = 0; r < batch.rows(); ++r) view(r) = std::get<T>(batch.row(r)[f]);
    return a;
  }

  py::dict columns(const Batch& batch) const {
    const std::size_t rows = batch.rows();
    const auto n = static_cast<py::ssize_t>(rows);
    py::dict features;
    for (std::size_t f = 0; f < schema_.features.size(); ++f) {
      const FeatureSpec& spec = schema_.features[f];
      py::object column;
      switch (spec.type) {
        case ValueType::kFloat:
          column = scalar_column<double>(batch, f);
          break;
        case ValueType::kInt:
          column = scalar_column<std::int64_t>(batch, f);
          break;
        case ValueType::kBool:
          column = scalar_column<bool>(batch, f);
          break;
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
    if (is_plain_ndarray(result) &&
        from_array(py::reinterpret_borrow<py::array>(result), rows, outputs)) {
      return Status::Ok();
    }
    py::sequence items = py::reinterpret_borrow<py::sequence>(
        py::isinstance<py::sequence>(result) ? result : py::list(result));
    for (std::size_t r = 0; r < rows; ++r) {
      // An owning reference: indexing a numpy array makes a new object per element, which a
      // bare handle would let go before the cast reads it.
      py::object item = items[r];
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

  // Exactly numpy.ndarray: a subclass (a masked array, one with its own __len__) may mean more
  // than its buffer says, so it takes the general path.
  static bool is_plain_ndarray(const py::object& result) {
    static const py::handle ndarray =
        py::object(py::module_::import("numpy").attr("ndarray")).release();
    return result.get_type().is(ndarray);
  }

  // A numeric numpy array read through its buffer, with no Python object per row: a column of
  // numbers, or for a float_vector output a [rows, length] matrix, `rows` long. False: another
  // kind of array (strings, objects, another shape or length, integers that may not fit), left
  // to the general path, which converts item by item or says why not.
  bool from_array(const py::array& a, std::size_t rows, std::vector<Value>& outputs) const {
    const OutputSpec& out = schema_.output;
    const char kind = a.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b') return false;
    if (a.ndim() < 1 || static_cast<std::size_t>(a.shape(0)) != rows) return false;
    if (out.type == ValueType::kFloatVector) {
      if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != out.length) return false;
      const auto m = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
      if (!m) return false;
      const float* v = m.data();
      outputs.reserve(outputs.size() + rows);
      for (std::size_t r = 0; r < rows; ++r, v += out.length) {
        outputs.emplace_back(std::vector<float>(v, v + out.length));
      }
      return true;
    }
    if (a.ndim() != 1) return false;
    outputs.reserve(outputs.size() + rows);
    switch (out.type) {
      case ValueType::kFloat: {
        if (kind == 'b') return false;  // bools: as the general path decides
        const auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!c) return false;
        for (std::size_t r = 0; r < rows; ++r) outputs.emplace_back(c.data()[r]);
        return true;
      }
      case ValueType::kInt: {
        // Signed integers only: a float is not an int, and a uint64 may not fit (the general
        // path says so instead of wrapping it).
        if (kind != 'i') return false;
        const auto c =
            py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!c) return false;
        for (std::size_t r = 0; r < rows; ++r) outputs.emplace_back(c.data()[r]);
        return true;
      }
      case ValueType::kBool: {
        if (kind != 'b') return false;
        const auto c = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!c) return false;
        for (std::size_t r = 0; r < rows; ++r) outputs.emplace_back(c.data()[r]);
        return true;
      }
      default:
        return false;
    }
  }

  py::object module_;
  py::object state_;
  Schema schema_;
};

// The version's model.py, already resolved by the server to its real path inside the model
// repository (python_runtime.cc: the server checks every file a version names).
Result<std::unique_ptr<PythonModel>> load_python_model(const LoadContext& ctx) {
  const std::filesystem::path code = ctx.version_dir / ctx.option("module", "model.py");
  try {
    ensure_interpreter();  // no exception leaves the module
  } catch (const std::exception& e) {
    return FailedPrecondition(std::string("the python runtime cannot start: ") + e.what());
  }
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
    return std::make_unique<PythonModel>(std::move(module), std::move(state), *ctx.schema);
  } catch (py::error_already_set& e) {
    return FailedPrecondition(code.string() + ": " + describe(e));
  }
}

// No exception leaves the module: one from another library than pybind11 becomes the load's error.
Result<std::unique_ptr<Model>> load_version(const LoadContext& ctx) {
  try {
    auto model = load_python_model(ctx);
    if (!model.ok()) return model.status();
    return std::unique_ptr<Model>(std::move(model).value());
  } catch (const std::exception& e) {
    return FailedPrecondition(std::string("the python runtime failed to load the version: ") +
                              e.what());
  }
}

Status predict_columns(const Model& model, std::size_t rows,
                       const std::vector<worker::ColumnBytes>& columns,
                       std::vector<Value>& outputs) {
  const auto* python = dynamic_cast<const PythonModel*>(&model);
  if (python == nullptr) return Internal("not a model of the python runtime's module");
  return python->predict_columns(rows, columns, outputs);
}

}  // namespace
}  // namespace forklift

// The module's entry points (runtime_module.h, python_module.h).
extern "C" __attribute__((visibility("default"))) forklift::ModuleLoadFn forklift_python_loader() {
  return &forklift::load_version;
}

// The build this module belongs to: forklift refuses a module whose string differs from its own.
extern "C" __attribute__((visibility("default"))) const char* forklift_python_loader_abi() {
  return FORKLIFT_MODULE_ABI;
}

extern "C" __attribute__((visibility("default"))) forklift::PythonPredictColumnsFn
forklift_python_predict_columns() {
  return &forklift::predict_columns;
}
