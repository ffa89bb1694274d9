// The `python` trainer: the team's `train(data, params)` (train.yaml's python.module and
// python.function) in a child Python process, so that its libraries (scikit-learn, PyTorch) and
// its crashes stay out of the server.
//
// The rows to train on go to the child as two files in the staging directory (removed before the
// version is published): a JSON header and the numeric columns as little-endian float64. The
// child writes the artifact, reports progress as JSON lines on a private pipe (the team's own
// prints go to stderr, which becomes the job's log), and is stopped with its whole process group
// when the job is cancelled or overruns python.timeout_minutes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "common/child_environment.h"
#include "common/file_util.h"
#include "common/json_writer.h"
#include "training/trainer.h"

namespace forklift::training {
namespace {

constexpr std::size_t kMaxProtocolLine = 64 * 1024;
constexpr auto kGraceAfterTerm = std::chrono::seconds(5);
constexpr auto kAfterExit = std::chrono::seconds(1);

// Runs in the child: reads the data, calls the team's function, writes the artifact. fd 3 is the
// progress pipe; stdout is sent to stderr so that a print() cannot corrupt it.
constexpr const char* kDriver = R"py(
import atexit, ctypes, inspect, json, os, pickle, signal, sys, time, importlib.util
try:
    libc = ctypes.CDLL(None)
    libc.prctl(1, 9)   # PR_SET_PDEATHSIG, SIGKILL: killed when the server dies
    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: what train() starts stays ours, setsid() or not
except Exception:
    pass

def kill_descendants():
    """Every process train() started (they are reparented to this one) is killed and reaped."""
    me = os.getpid()
    for _ in range(100):
        kids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        kids.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
        if not kids:
            return
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.02)

def on_term(signum, frame):
    kill_descendants()
    os._exit(143)

signal.signal(signal.SIGTERM, on_term)
atexit.register(kill_descendants)
progress = os.fdopen(3, "w", buffering=1)
sys.stdout = sys.stderr
header_path, columns_path, module_path, function_name, output = sys.argv[1:6]
with open(header_path) as f:
    header = json.load(f)
import numpy as np

class Data:
    """The rows to train on: X (numeric columns, NaN missing), y, and each row as a dict."""
    def __init__(self):
        rows, cols = header["rows"], len(header["columns"])
        raw = np.fromfile(columns_path, dtype="<f8")
        self.X = raw[: rows * cols].reshape(rows, cols)
        self.y = raw[rows * cols : rows * cols + rows]
        self.feature_names = header["columns"]
        self.features = header["features"]
        self.strings = header["strings"]
    def __len__(self):
        return len(self.y)
    def rows(self):
        out = []
        for r in range(len(self.y)):
            row, col, s = {}, 0, 0
            for f in self.features:
                if f["type"] == "string":
                    row[f["name"]] = self.strings[r][s]; s += 1
                elif f["type"] == "float_vector":
                    row[f["name"]] = [float(v) for v in self.X[r, col : col + f["length"]]]; col += f["length"]
                else:
                    v = self.X[r, col]; col += 1
                    row[f["name"]] = None if v != v else (int(v) if f["type"] == "int" else bool(v) if f["type"] == "bool" else float(v))
            out.append(row)
        return out

def report(done, total, metric=None, value=None):
    progress.write(json.dumps({"done": done, "total": total, "metric": metric, "value": value}) + "\n")

sys.path.insert(0, os.path.dirname(os.path.abspath(module_path)))
spec = importlib.util.spec_from_file_location("forklift_team_train", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
fn = getattr(module, function_name)
args = [Data(), header["params"]]
if len(inspect.signature(fn).parameters) >= 3:
    args.append(report)
artifact = fn(*args)
if isinstance(artifact, (bytes, bytearray)):
    with open(output, "wb") as f:
        f.write(artifact)
elif hasattr(artifact, "save"):
    artifact.save(output)
elif isinstance(artifact, str) and os.path.isfile(artifact):
    import shutil
    shutil.copyfile(artifact, output)
else:
    with open(output, "wb") as f:
        pickle.dump(artifact, f)
progress.write(json.dumps({"done": "artifact"}) + "\n")
)py";

// What a child printed, safe for a terminal and a log: control characters (terminal escapes
// included) become '?'.
std::string printable(std::string s) {
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
  }
  return s;
}

// header.json and columns.f64 for the training rows.
Status write_inputs(const TrainInput& in, const std::filesystem::path& header,
                    const std::filesystem::path& columns) {
  const Dataset& data = *in.data;
  const Schema& schema = data.schema();
  std::string h = "{\"rows\":";
  json::append_int(h, static_cast<std::int64_t>(in.split->train.size()));
  h += ",\"columns\":[";
  bool first = true;
  for (const auto& f : schema.features) {
    if (f.type == ValueType::kString) continue;
    for (std::size_t k = 0; k < f.length; ++k) {
      if (!first) h.push_back(',');
      first = false;
      json::append_string(h, f.length > 1 ? f.name + "[" + std::to_string(k) + "]" : f.name);
    }
  }
  h += "],\"features\":[";
  for (std::size_t i = 0; i < schema.features.size(); ++i) {
    if (i) h.push_back(',');
    h += "{\"name\":";
    json::append_string(h, schema.features[i].name);
    h += ",\"type\":";
    json::append_string(h, to_string(schema.features[i].type));
    h += ",\"length\":";
    json::append_int(h, static_cast<std::int64_t>(schema.features[i].length));
    h += "}";
  }
  h += "],\"strings\":[";
  if (data.has_strings()) {
    const Batch rows = data.batch(in.split->train);
    for (std::size_t r = 0; r < rows.rows(); ++r) {
      if (r) h.push_back(',');
      h.push_back('[');
      bool first_string = true;
      const RowView row = rows.row(r);
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (const auto* s = std::get_if<std::string>(&row[i])) {
          if (!first_string) h.push_back(',');
          first_string = false;
          json::append_string(h, *s);
        }
      }
      h.push_back(']');
    }
  }
  h += "],\"params\":{";
  first = true;
  for (const auto& [k, v] : in.spec->params) {
    if (!first) h.push_back(',');
    first = false;
    json::append_string(h, k);
    h.push_back(':');
    json::append_string(h, v);
  }
  h += "}}";
  if (Status s = write_file_atomically(header, h); !s.ok()) return s;
  std::string bytes;
  bytes.reserve((in.split->train.size() * (data.dense_columns() + 1)) * sizeof(double));
  for (std::size_t r : in.split->train) {
    bytes.append(reinterpret_cast<const char*>(data.dense_row(r)),
                 data.dense_columns() * sizeof(double));
  }
  for (std::size_t r : in.split->train) {
    const double y = data.label(r);
    bytes.append(reinterpret_cast<const char*>(&y), sizeof(double));
  }
  return write_file_atomically(columns, bytes);
}

// The child's end of things: its pid, and the read ends of its progress pipe and stderr.
struct Child {
  pid_t pid = -1;
  UniqueFd progress, errors;
};

Result<Child> spawn(const std::string& python, const std::vector<std::string>& args,
                    const std::filesystem::path& cwd) {
  int progress[2], errors[2];
  if (::pipe2(progress, O_CLOEXEC) != 0) return Internal("pipe: " + std::string(strerror(errno)));
  UniqueFd progress_read(progress[0]), progress_write(progress[1]);
  if (::pipe2(errors, O_CLOEXEC) != 0) return Internal("pipe: " + std::string(strerror(errno)));
  UniqueFd errors_read(errors[0]), errors_write(errors[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, progress_write.get(), 3);
  posix_spawn_file_actions_adddup2(&actions, errors_write.get(), 2);
  posix_spawn_file_actions_adddup2(&actions, errors_write.get(), 1);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // Nothing else of the server's: its listening sockets, database connections, files.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so that a cancel stops whatever the team's code started too.
  posix_spawnattr_setpgroup(&attr, 0);
  // Signals as a fresh process has them: the server blocks SIGTERM and SIGINT in every thread
  // (it waits for them in one) and ignores SIGPIPE, and a child would inherit both, so a cancel's
  // SIGTERM would not reach the trainer's handler (found by a review: what train() had started
  // outlived the job).
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(python.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  // The server's environment without its own secrets (the admin and feedback tokens, database
  // connection strings and passwords): a team's code sees what it needs, not the keys to the
  // server.
  ChildEnvironment env;
  const int rc = ::posix_spawn(&pid, python.c_str(), &actions, &attr, argv.data(), env.envp());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return FailedPrecondition("cannot start " + python + ": " + strerror(rc));
  return Child{pid, std::move(progress_read), std::move(errors_read)};
}

// Reads complete lines from `fd` into `pending`, handing each to `line`; false at the end.
template <class F>
bool drain(int fd, std::string& pending, F&& line) {
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    if (!pending.empty()) line(pending);
    pending.clear();
    return false;
  }
  pending.append(buf, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    line(pending.substr(start, nl - start));
  }
  pending.erase(0, start);
  if (pending.size() > kMaxProtocolLine) {
    line(pending.substr(0, kMaxProtocolLine));
    pending.clear();
  }
  return true;
}

class PythonTrainer final : public Trainer {
 public:
  Result<TrainOutput> train(const TrainInput& in) const override {
    const TrainSpec& spec = *in.spec;
    auto module = real_path_within(in.model_dir, in.model_dir / spec.python.module);
    if (!module.ok()) return FailedPrecondition("python.module: " + module.status().message());
    const std::filesystem::path header = in.output.parent_path() / ".train-header.json";
    const std::filesystem::path columns = in.output.parent_path() / ".train-columns.f64";
    if (Status s = write_inputs(in, header, columns); !s.ok()) return s;
    auto child = spawn(spec.python.executable,
                       {"-c", kDriver, header.string(), columns.string(), module->string(),
                        spec.python.function, in.output.string()},
                       in.model_dir);
    if (!child.ok()) return child.status();
    TrainOutput out;
    out.params = spec.params;
    bool artifact_written = false;
    std::string progress_pending, errors_pending, last_error;
    const auto on_progress = [&](const std::string& line) {
      simdjson::dom::parser parser;
      simdjson::dom::element e;
      if (parser.parse(line).get(e)) return;
      std::string_view done_text;
      if (!e["done"].get_string().get(done_text)) {
        artifact_written = done_text == "artifact";
        return;
      }
      std::int64_t done = 0, total = 0;
      if (e["done"].get_int64().get(done) || e["total"].get_int64().get(total) || done < 0 ||
          total < 0) {
        return;
      }
      Progress p;
      p.stage = "training";
      p.done = static_cast<std::size_t>(done);
      p.total = static_cast<std::size_t>(total);
      std::string_view metric;
      if (!e["metric"].get_string().get(metric)) p.metric = std::string(metric.substr(0, 64));
      double value = 0;
      if (!e["value"].get_double().get(value)) p.holdout_value = value;
      if (!std::isnan(p.holdout_value)) out.history.push_back(p.holdout_value);
      out.history_metric = p.metric;
      out.rounds = static_cast<int>(std::min<std::int64_t>(done, 1 << 30));
      if (in.progress) in.progress(p);
    };
    const auto on_error = [&](const std::string& raw) {
      const std::string line = printable(raw.substr(0, 2000));
      last_error = line.substr(0, 500);
      if (in.log) in.log("train.py: " + line);
    };
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::minutes(spec.python.timeout_minutes);
    // Until the child exits (or is stopped): its pipes closing proves nothing (it may close them
    // and go on), and their staying open proves nothing either (something it started may hold
    // them). Once it exited, what is still in the pipes is read for at most kAfterExit.
    bool progress_open = true, errors_open = true, exited = false;
    int status = 0;
    std::string stopped;  // why the child was stopped, if it was
    std::chrono::steady_clock::time_point drain_until{};
    for (;;) {
      pollfd fds[2] = {{progress_open ? child->progress.get() : -1, POLLIN, 0},
                       {errors_open ? child->errors.get() : -1, POLLIN, 0}};
      ::poll(fds, 2, 200);
      if (fds[0].revents) {
        progress_open = drain(child->progress.get(), progress_pending, on_progress);
      }
      if (fds[1].revents) errors_open = drain(child->errors.get(), errors_pending, on_error);
      const auto now = std::chrono::steady_clock::now();
      if (!exited && ::waitpid(child->pid, &status, WNOHANG) == child->pid) {
        exited = true;
        // Anything it left running in its group goes with it.
        ::kill(-child->pid, SIGKILL);
        drain_until = now + kAfterExit;
      }
      if (exited && ((!progress_open && !errors_open) || now > drain_until)) break;
      if (!exited && (in.cancelled() || now > deadline)) {
        stopped = in.cancelled() ? "cancelled" : "python.timeout_minutes passed";
        stop_group(child->pid);
        break;
      }
    }
    std::error_code ec;
    std::filesystem::remove(header, ec);
    std::filesystem::remove(columns, ec);
    if (!stopped.empty()) return Unavailable(stopped);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !artifact_written) {
      std::string why = WIFSIGNALED(status)
                            ? "was killed by signal " + std::to_string(WTERMSIG(status))
                            : "exited with status " + std::to_string(WEXITSTATUS(status));
      if (!last_error.empty()) why += " (last line: " + last_error + ")";
      return FailedPrecondition(spec.python.module + " " + why);
    }
    return out;
  }

 private:
  // SIGTERM to the whole group, then SIGKILL after a grace period; returns once the child is
  // reaped.
  static void stop_group(pid_t pid) {
    ::kill(-pid, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + kGraceAfterTerm;
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        ::kill(-pid, SIGKILL);  // what it started may still run
        return;
      }
      ::usleep(50 * 1000);
    }
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
};

}  // namespace

std::unique_ptr<Trainer> make_python_trainer() {
  return std::make_unique<PythonTrainer>();
}

}  // namespace forklift::training
