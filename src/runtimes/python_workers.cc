// The python runtime's worker processes (`runtime_options: {processes: N}`, N > 1): the server
// side, a pool of processes that each run the version's model.py with an interpreter of their
// own, so that N of them run Python on N cores; and the worker side, `forklift runtime-worker
// python ...`, this same executable loading the version through the module and answering the
// server's requests over a socket (worker_protocol.h).
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/child_environment.h"
#include "common/file_util.h"
#include "common/thread_priority.h"
#include "core/manifest.h"  // the worker process reads model.yaml itself
#include "core/repository.h"
#include "forklift/runtime.h"
#include "observability/log.h"
#include "runtimes/python_module.h"
#include "runtimes/python_runtime.h"
#include "runtimes/runtime_module.h"
#include "runtimes/worker_protocol.h"

namespace forklift {
namespace {

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

// A worker started again (a replacement, a restore) must have loaded the model by then, or it is
// taken to hang in load(): the version loaded once already, so minutes mean something is wrong.
constexpr std::chrono::minutes kReloadLimit{5};

// `load_by`: when the worker must have loaded the model (none: as long as it takes, for the
// version's first load, which the registry bounds). `stop`: given up when requested (unload).
Result<std::unique_ptr<WorkerProcess>> spawn_worker(
    const LoadContext& ctx, const OutputSpec& output,
    std::optional<std::chrono::steady_clock::time_point> load_by = {}, std::stop_token stop = {}) {
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
  ChildEnvironment env({"FORKLIFT_MODULE_DIR"});  // where the server found its modules
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), env.envp());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) return Unavailable(std::string("cannot start a worker process: ") + strerror(rc));
  worker->pid = pid;
  // The worker answers once it has loaded the model: an empty success, or why it could not.
  // Until its first byte, waited for in slices, so that a stop request or the limit is seen.
  for (;;) {
    if (stop.stop_requested()) return Unavailable("the model is being unloaded");
    const auto now = std::chrono::steady_clock::now();
    if (load_by && now >= *load_by) {
      return Unavailable("the worker process did not load the model within " +
                         std::to_string(kReloadLimit.count()) + " minutes");
    }
    pollfd ready_fd{worker->fd, POLLIN, 0};
    if (::poll(&ready_fd, 1, 200) != 0) break;  // readable, closed, or an error: read_frame says
  }
  std::string ready;
  const worker::FrameRead read =
      worker::read_frame(worker->fd, ready, kMaxLoadAnswerBytes, load_by);
  if (read == worker::FrameRead::kTimedOut) {
    return Unavailable("the worker process did not finish loading the model in time");
  }
  if (read != worker::FrameRead::kOk) {
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
    processes_ = processes;
    restorer_ = std::jthread([this](std::stop_token stop) { restore_missing_workers(stop); });
    return Status::Ok();
  }

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    std::unique_ptr<WorkerProcess> w;
    {
      std::unique_lock lock(mu_);
      free_.wait(lock, [&] { return !idle_.empty() || alive_ == 0; });
      if (idle_.empty()) {
        return Unavailable(
            "every worker process of this model has died; new ones are being started");
      }
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
      const auto old_pid = static_cast<std::int64_t>(w->pid);
      w->kill_now();
      auto fresh =
          replace_worker(old_pid, read == worker::FrameRead::kTimedOut   ? "timeout"
                                  : malformed                            ? "malformed answer"
                                  : read == worker::FrameRead::kTooLarge ? "answer too large"
                                                                         : "died");
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
    bool short_now = false;
    {
      std::lock_guard lock(mu_);
      if (w) {
        idle_.push_back(std::move(w));
      } else {
        --alive_;
        short_now = true;
      }
    }
    if (short_now) {
      // Every caller waiting must see alive_ reach 0, and the restorer has work.
      free_.notify_all();
      restore_wake_.notify_one();
    } else {
      free_.notify_one();
    }
    return status;
  }

  ~ProcessPoolModel() override {
    // The restorer first (it may be starting a worker), then the workers (idle_'s destructor).
    restorer_.request_stop();
    if (restorer_.joinable()) restorer_.join();
  }

 private:
  // A new worker for one that was stopped (`old_pid`, for `why`), logged either way. One try on
  // the caller's thread (the call already failed and waits for nothing else); when it fails, the
  // pool runs one short and the restorer thread tries again.
  Result<std::unique_ptr<WorkerProcess>> replace_worker(std::int64_t old_pid,
                                                        std::string_view why) const {
    auto fresh =
        spawn_worker(ctx_, schema_.output, std::chrono::steady_clock::now() + kReloadLimit);
    if (fresh.ok()) {
      log::warn("python_worker_replaced", {{"model_id", ctx_.model_id},
                                           {"version", ctx_.version},
                                           {"reason", why},
                                           {"old_pid", old_pid},
                                           {"pid", static_cast<std::int64_t>((*fresh)->pid)}});
    } else {
      log::error("python_worker_not_replaced", {{"model_id", ctx_.model_id},
                                                {"version", ctx_.version},
                                                {"reason", why},
                                                {"old_pid", old_pid},
                                                {"error", fresh.status().message()}});
    }
    return fresh;
  }

  // The pool's own thread: while it runs short of workers (a replacement failed to start, say
  // for memory on a busy machine), it starts the missing ones, 1 s after the pool ran short and
  // then backing off to 5 minutes while starts fail, so that no request pays for a start and a
  // model that can no longer start logs a line per try, not per request.
  void restore_missing_workers(std::stop_token stop) {
    constexpr std::chrono::milliseconds kFirstPause{1000};
    constexpr std::chrono::milliseconds kLongestPause{5 * 60 * 1000};
    std::chrono::milliseconds pause = kFirstPause;
    std::unique_lock lock(mu_);
    for (;;) {
      restore_wake_.wait(lock, stop, [&] { return alive_ < processes_; });
      if (stop.stop_requested()) return;
      restore_wake_.wait_for(lock, stop, pause, [] { return false; });
      if (stop.stop_requested()) return;
      lock.unlock();
      auto fresh =
          spawn_worker(ctx_, schema_.output, std::chrono::steady_clock::now() + kReloadLimit, stop);
      if (stop.stop_requested()) return;
      if (fresh.ok()) {
        const auto pid = static_cast<std::int64_t>((*fresh)->pid);
        {
          std::lock_guard added(mu_);
          idle_.push_back(std::move(fresh).value());
          ++alive_;
        }
        free_.notify_all();
        pause = kFirstPause;
        log::warn("python_worker_restored",
                  {{"model_id", ctx_.model_id}, {"version", ctx_.version}, {"pid", pid}});
      } else {
        pause = std::min(pause * 2, kLongestPause);
        log::error("python_worker_not_restored",
                   {{"model_id", ctx_.model_id},
                    {"version", ctx_.version},
                    {"error", fresh.status().message()},
                    {"retry_in_seconds", static_cast<std::int64_t>(pause.count() / 1000)}});
      }
      lock.lock();
    }
  }

  LoadContext ctx_;
  Schema schema_;
  std::chrono::milliseconds timeout_;
  mutable std::mutex mu_;
  mutable std::condition_variable free_;
  mutable std::vector<std::unique_ptr<WorkerProcess>> idle_;  // guarded by mu_
  mutable std::size_t alive_ = 0;                             // guarded by mu_
  std::size_t processes_ = 0;  // set by start(), before the pool is shared
  // Wakes the restorer when the pool runs short; waits with a stop token (hence _any).
  mutable std::condition_variable_any restore_wake_;
  std::jthread restorer_;  // last: stopped before the members it uses go
};

}  // namespace

Result<std::unique_ptr<Model>> start_worker_pool(const LoadContext& ctx, std::size_t processes) {
  auto module_path = python_module_file(ctx);
  if (!module_path.ok()) return module_path.status();
  const std::filesystem::path code = *module_path;
  // The server enforces timeout_ms above every runtime; the pool uses it too, to stop (and
  // replace) a worker process that overran it.
  LoadContext copy = ctx;
  copy.schema = nullptr;  // the worker reads model.yaml itself
  auto pool = std::make_unique<ProcessPoolModel>(std::move(copy), *ctx.schema, ctx.timeout);
  if (Status s = pool->start(processes); !s.ok()) {
    return FailedPrecondition(code.string() + ": " + s.message());
  }
  return std::unique_ptr<Model>(std::move(pool));
}

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
  auto model = load_through_module(ctx);
  auto predict_columns =
      module_symbol(kPythonModuleFile, kPythonModuleEntry, kPythonPredictColumnsEntry);
  if (model.ok() && !predict_columns.ok()) model = predict_columns.status();
  worker::write_frame(kFd, worker::encode_response(manifest->schema.output, model.status(), none));
  if (!model.ok()) return 1;
  const PythonPredictColumnsFn predict =
      model.ok() ? reinterpret_cast<PythonPredictColumnsEntryFn>(*predict_columns)() : nullptr;
  if (model.ok() && predict == nullptr) {
    model = FailedPrecondition(std::string("the runtime module ") + kPythonModuleFile + " has no " +
                               kPythonPredictColumnsEntry);
  }
  std::string request;
  std::vector<worker::ColumnBytes> columns;
  while (worker::read_frame(kFd, request) == worker::FrameRead::kOk) {
    std::size_t rows = 0;
    std::vector<Value> outputs;
    Status s = worker::split_request(request, manifest->schema, rows, columns);
    if (s.ok()) s = predict(**model, rows, columns, outputs);
    if (!worker::write_frame(kFd, worker::encode_response(manifest->schema.output, s, outputs))) {
      break;
    }
  }
  return 0;  // the server closed the socket: unloaded or stopping
}

}  // namespace forklift
