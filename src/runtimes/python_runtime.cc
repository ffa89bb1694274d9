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
#include <poll.h>
#include <pybind11/embed.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/child_environment.h"
#include "common/file_util.h"
#include "common/thread_priority.h"
#include "core/manifest.h"  // the worker process reads model.yaml itself
#include "core/repository.h"
#include "forklift/runtime.h"
#include "runtimes/worker_protocol.h"

namespace py = pybind11;

namespace forklift {
namespace {

// The process's one interpreter, started on first use and kept until the process exits:
// finalizing CPython while C++ objects may still hold Python references is not safe, and
// restarting it is not supported by many extension modules (numpy among them).
void ensure_interpreter() {
  static std::once_flag started;
  std::call_once(started, [] {
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

// The version's Python file (runtime_options.module, default model.py): it must resolve, symlinks
// followed, to a regular file inside the model repository, as every file of a version must.
Result<std::filesystem::path> module_file(const LoadContext& ctx) {
  const std::filesystem::path code = ctx.version_dir / ctx.option("module", "model.py");
  auto opened = open_regular_within(repository_of(ctx.version_dir), code);
  if (!opened.ok()) {
    return FailedPrecondition("runtime_options.module: " + opened.status().message() +
                              " (the python runtime calls load() and predict() from it)");
  }
  return opened->real_path;
}

Result<std::unique_ptr<PythonModel>> load_python_model(const LoadContext& ctx) {
  auto module_path = module_file(ctx);
  if (!module_path.ok()) return module_path.status();
  const std::filesystem::path code = *module_path;
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
    return std::make_unique<PythonModel>(std::move(module), std::move(state), *ctx.schema);
  } catch (py::error_already_set& e) {
    return FailedPrecondition(code.string() + ": " + describe(e));
  }
}

Result<std::unique_ptr<Model>> load_in_process(const LoadContext& ctx) {
  auto model = load_python_model(ctx);
  if (!model.ok()) return model.status();
  return std::unique_ptr<Model>(std::move(model).value());
}

// --- Worker processes: `runtime_options: {processes: N}` -------------------------------------

// The worker's first message (loaded, or why not) is small: an error message at most.
constexpr std::size_t kMaxLoadAnswerBytes = 1 << 20;

// One worker process: this same executable started as `runtime-worker python ...`, talking over
// a socket pair. Each has its own interpreter, so N of them run Python on N cores.
struct WorkerProcess {
  pid_t pid = -1;
  int fd = -1;
  ~WorkerProcess() { stop(); }
  // A worker stuck in a call: no waiting for it to exit on its own.
  void kill_now() {
    if (pid > 0) ::kill(pid, SIGKILL);
    stop();
  }
  void stop() {
    if (fd >= 0) ::close(fd);  // the worker sees EOF and exits
    fd = -1;
    if (pid <= 0) return;
    for (int i = 0; i < 200; ++i) {  // up to 2 s to exit on its own
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      ::usleep(10000);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

Result<std::unique_ptr<WorkerProcess>> spawn_worker(const LoadContext& ctx,
                                                    const OutputSpec& output) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Unavailable(std::string("socketpair: ") + std::strerror(errno));
  }
  auto worker = std::make_unique<WorkerProcess>();
  worker->fd = fds[0];
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);  // dup2 clears close-on-exec on fd 3
  // Nothing else of the server's reaches the team's code: not its listening sockets (found by a
  // review: a model.py could accept() on the admin listener), connections or files.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  const std::string version = std::to_string(ctx.version);
  const std::string dir = ctx.version_dir.string();
  std::vector<std::string> args = {"forklift", "runtime-worker", "python",
                                   dir,        ctx.model_id,     version};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  // Nor its secrets: the admin and feedback tokens and database connection strings.
  ChildEnvironment env;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), env.envp());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) return Unavailable(std::string("cannot start a worker process: ") + strerror(rc));
  worker->pid = pid;
  // The worker answers once it has loaded the model: an empty success, or why it could not.
  std::string ready;
  if (worker::read_frame(worker->fd, ready, kMaxLoadAnswerBytes) != worker::FrameRead::kOk) {
    return FailedPrecondition("the worker process exited while loading the model");
  }
  std::vector<Value> none;
  if (Status s = worker::decode_response(ready, output, 0, none); !s.ok()) {
    return FailedPrecondition(s.message());
  }
  return worker;
}

class ProcessPoolModel final : public Model {
 public:
  // `timeout`: the manifest's timeout_ms (0: none). A worker that has not answered by then is
  // killed and replaced, so a predict() that hangs costs one call, not a worker for good.
  ProcessPoolModel(LoadContext ctx, const Schema& schema, std::chrono::milliseconds timeout)
      : ctx_(std::move(ctx)), schema_(schema), timeout_(timeout) {}

  Status start(std::size_t processes) {
    for (std::size_t i = 0; i < processes; ++i) {
      auto w = spawn_worker(ctx_, schema_.output);
      if (!w.ok()) return w.status();
      idle_.push_back(std::move(w).value());
    }
    alive_ = processes;
    return Status::Ok();
  }

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    std::unique_ptr<WorkerProcess> w;
    {
      std::unique_lock lock(mu_);
      free_.wait(lock, [&] { return !idle_.empty() || alive_ == 0; });
      if (idle_.empty()) return Unavailable("every worker process of this model has died");
      w = std::move(idle_.back());
      idle_.pop_back();
    }
    std::string answer;
    Status status;
    const bool sent = worker::write_frame(w->fd, worker::encode_request(batch));
    // The whole answer must arrive within timeout_ms, not only its first byte: a worker that
    // sends half a frame and stalls is as stuck as one that sends nothing.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout_.count() > 0) deadline = std::chrono::steady_clock::now() + timeout_;
    const worker::FrameRead read =
        sent ? worker::read_frame(w->fd, answer, worker::kMaxFrameBytes, deadline)
             : worker::FrameRead::kClosed;
    bool malformed = false;
    if (read == worker::FrameRead::kOk) {
      status = worker::decode_response(answer, schema_.output, batch.rows(), outputs, &malformed);
    }
    if (read != worker::FrameRead::kOk || malformed) {
      // Stuck past the deadline, a frame larger than any answer, an answer that is not one (it
      // may be out of step with its requests from now on), or the process died (a crash in an
      // extension, the OOM killer): in each case this worker is replaced.
      w->kill_now();
      auto fresh = spawn_worker(ctx_, schema_.output);
      const std::string replaced =
          fresh.ok() ? "" : "; no replacement could be started: " + fresh.status().message();
      if (read == worker::FrameRead::kTimedOut) {
        status = DeadlineExceeded("its worker process did not answer within timeout_ms (" +
                                  std::to_string(timeout_.count()) + " ms) and was stopped" +
                                  (fresh.ok() ? " and replaced" : replaced));
      } else if (malformed) {
        status = Internal("its worker process sent a malformed answer (" + status.message() +
                          ") and was replaced" + replaced);
      } else if (read == worker::FrameRead::kTooLarge) {
        status =
            Internal("its worker process sent an answer larger than " +
                     std::to_string(worker::kMaxFrameBytes) + " bytes and was replaced" + replaced);
      } else {
        status = Internal("its worker process died during the call" +
                          std::string(fresh.ok() ? " (restarted)" : replaced));
      }
      w = fresh.ok() ? std::move(fresh).value() : nullptr;
    }
    {
      std::lock_guard lock(mu_);
      if (w) {
        idle_.push_back(std::move(w));
      } else {
        --alive_;
      }
    }
    free_.notify_one();
    return status;
  }

 private:
  LoadContext ctx_;
  Schema schema_;
  std::chrono::milliseconds timeout_;
  mutable std::mutex mu_;
  mutable std::condition_variable free_;
  mutable std::vector<std::unique_ptr<WorkerProcess>> idle_;  // guarded by mu_
  mutable std::size_t alive_ = 0;                             // guarded by mu_
};

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
  if (processes == 1) return load_in_process(ctx);
  auto module_path = module_file(ctx);
  if (!module_path.ok()) return module_path.status();
  const std::filesystem::path code = *module_path;
  // The server enforces timeout_ms above every runtime; the pool uses it too, to stop (and
  // replace) a worker process that overran it.
  LoadContext copy = ctx;
  copy.schema = nullptr;  // the worker reads model.yaml itself
  auto pool = std::make_unique<ProcessPoolModel>(std::move(copy), *ctx.schema, ctx.timeout);
  if (Status s = pool->start(static_cast<std::size_t>(processes)); !s.ok()) {
    return FailedPrecondition(code.string() + ": " + s.message());
  }
  return std::unique_ptr<Model>(std::move(pool));
}

}  // namespace

int run_python_worker(int argc, char** argv) {
  // argv: version_dir model_id version; the socket to the server is fd 3.
  if (argc != 3) return 2;
  constexpr int kFd = 3;
  // Started by the idle-priority loader thread, whose scheduling policy it inherits; it serves.
  restore_this_thread_priority();
  // The server may go away (or drop this worker) while this process is busy loading or inside a
  // predict() that never returns, and so not reading the socket. A watchdog ends the process as
  // soon as the server's end of the socket is closed, so no worker outlives its server.
  std::thread([] {
    pollfd hangup{kFd, 0, 0};  // POLLHUP is reported whatever the events asked for
    while (::poll(&hangup, 1, -1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }).detach();
  const std::filesystem::path dir = argv[0];
  // The same checks as the server's: every file inside the repository.
  auto manifest = read_manifest(dir);
  std::vector<Value> none;
  if (!manifest.ok()) {
    worker::write_frame(kFd, worker::encode_response({}, manifest.status(), none));
    return 1;
  }
  auto artifact = open_regular_within(repository_of(dir), dir / manifest->artifact);
  if (!artifact.ok()) {
    worker::write_frame(kFd, worker::encode_response({}, artifact.status(), none));
    return 1;
  }
  LoadContext ctx{argv[1],           std::stoll(argv[2]),      dir, artifact->real_path,
                  &manifest->schema, manifest->runtime_options};
  auto model = load_python_model(ctx);
  worker::write_frame(kFd, worker::encode_response(manifest->schema.output, model.status(), none));
  if (!model.ok()) return 1;
  std::string request;
  std::vector<worker::ColumnBytes> columns;
  while (worker::read_frame(kFd, request) == worker::FrameRead::kOk) {
    std::size_t rows = 0;
    std::vector<Value> outputs;
    Status s = worker::split_request(request, manifest->schema, rows, columns);
    if (s.ok()) s = (*model)->predict_columns(rows, columns, outputs);
    if (!worker::write_frame(kFd, worker::encode_response(manifest->schema.output, s, outputs))) {
      break;
    }
  }
  return 0;  // the server closed the socket: unloaded or stopping
}

void register_python_runtime() {
  register_runtime(RuntimeInfo{"python", "python", load_python});
}

}  // namespace forklift
