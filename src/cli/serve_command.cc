#include "cli/serve_command.h"

#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "api/admin_router.h"
#include "api/router.h"
#include "common/thread_priority.h"
#include "core/model_registry.h"
#include "observability/log.h"
#include "runtimes/builtin.h"
#include "store/postgres_event_sink.h"
#include "store/postgres_state_store.h"

namespace forklift {
namespace {

// Loads the repository once, then rescans it every `poll_seconds` until stopped.
class RepositoryLoader {
 public:
  RepositoryLoader(ModelRegistry& registry, double poll_seconds)
      : registry_(registry), poll_seconds_(poll_seconds), thread_([this] { run(); }) {}
  ~RepositoryLoader() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    // The first load runs at normal priority: the server is not ready yet, so there is no
    // traffic to protect, and at idle priority any other busy process on the machine would
    // starve it (measured: servers that never became ready beside two busy loops).
    registry_.sync();
    {
      // Scoped: a snapshot held for the life of this loop would keep every version loaded at
      // start in memory (and a python version's worker processes running) after it retires.
      const auto snap = registry_.snapshot();
      log::info("repository_loaded", {{"models", static_cast<std::int64_t>(snap->models.size())},
                                      {"ready", snap->ready()}});
    }
    // Later loads and self-tests yield the CPU to the serving threads.
    lower_this_thread_priority(10);
    // Tick often enough to free retired versions soon after their last request; rescan the
    // repository every poll_seconds.
    const auto tick = std::chrono::milliseconds(200);
    auto next_scan = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(poll_seconds_));
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, tick, [&] { return stop_; })) {
      lock.unlock();
      if (poll_seconds_ > 0 && std::chrono::steady_clock::now() >= next_scan) {
        registry_.sync();
        next_scan = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(poll_seconds_));
      }
      registry_.collect_retired();
      lock.lock();
    }
  }

  ModelRegistry& registry_;
  double poll_seconds_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// Applies the changes other replicas store to this replica's registry, as they arrive. A change
// that cannot be applied yet (a version whose files have not reached this replica) is retried.
class StateFollower {
 public:
  StateFollower(ModelRegistry& registry, StateStore& store)
      : registry_(registry), store_(store), thread_([this] { run(); }) {}
  ~StateFollower() {
    stop_.store(true);
    store_.interrupt();
    thread_.join();
  }

 private:
  void run() {
    std::map<std::string, ModelControl> retry;
    while (!stop_.load()) {
      for (auto& [id, control] : store_.wait_for_changes(std::chrono::seconds(1))) {
        retry[id] = std::move(control);  // a newer change replaces one still waiting
      }
      for (auto it = retry.begin(); it != retry.end() && !stop_.load();) {
        it = registry_.apply_remote(it->first, it->second).ok() ? retry.erase(it) : std::next(it);
      }
      registry_.collect_retired();
    }
  }

  ModelRegistry& registry_;
  StateStore& store_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts after the members it uses
};

// Samples the metrics into the in-memory time series once a second (the UI's charts).
class Sampler {
 public:
  explicit Sampler(TimeSeries& series) : series_(series), thread_([this] { run(); }) {}
  ~Sampler() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    auto next = std::chrono::system_clock::now();
    std::unique_lock lock(mu_);
    for (;;) {
      next += std::chrono::seconds(1);
      if (cv_.wait_until(lock, next, [&] { return stop_; })) return;
      series_.sample(
          std::chrono::duration_cast<std::chrono::seconds>(next.time_since_epoch()).count());
    }
  }

  TimeSeries& series_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

std::filesystem::path find_ui(const std::string& given) {
  if (given == "none") return {};
  if (!given.empty()) return given;
  if (const char* env = std::getenv("FORKLIFT_UI_DIR")) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share/forklift/ui";
    if (std::filesystem::is_directory(installed, ec)) return installed;
  }
  return FORKLIFT_SOURCE_UI;  // running from a build directory
}

// The admin token: from `file` if given (first line, surrounding whitespace trimmed), else from
// $FORKLIFT_ADMIN_TOKEN, else empty. Never logged.
Result<std::string> read_admin_token(const std::string& file) {
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return NotFound("cannot read admin token file '" + file + "'");
    std::getline(in, token);
  } else if (const char* env = std::getenv("FORKLIFT_ADMIN_TOKEN")) {
    token = env;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  if (token.size() < 16) {
    return InvalidArgument(
        "the admin token " +
        (file.empty() ? std::string("in $FORKLIFT_ADMIN_TOKEN") : "in '" + file + "'") +
        " is shorter than 16 characters");
  }
  return token;
}

// Each connection takes a descriptor: a --max-connections above the descriptor limit would make
// accept() fail instead of answering 503. Raises the soft limit as far as the hard one allows and
// warns when that is still not enough.
void check_descriptor_limit(std::size_t max_connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  // Room for model files, worker sockets, event files, the admin listener: 64 more.
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + 64;
  if (limit.rlim_cur < wanted && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = std::min(wanted, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur < wanted) {
    log::warn("descriptor_limit_low",
              {{"max_connections", static_cast<std::int64_t>(max_connections)},
               {"open_files_limit", static_cast<std::int64_t>(limit.rlim_cur)},
               {"effect",
                "past the limit new connections wait in the kernel's queue instead "
                "of being answered 503; raise ulimit -n or lower --max-connections"}});
  }
}

}  // namespace

int run_serve(const ServeOptions& options) {
  // Log lines go to stdout, often a pipe: if its reader goes away, writing must fail with EPIPE
  // (and the line be lost), not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  check_descriptor_limit(options.server.max_connections);
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto token = read_admin_token(options.admin_token_file);
  if (!token.ok()) {
    log::error("admin_token_unreadable", {{"reason", token.status().message()}});
    return 1;
  }
  if (token->empty()) {
    log::warn("admin_token_missing",
              {{"effect", "control-plane changes are refused until a token is configured"}});
  }
  std::filesystem::path state_file = options.state_file;
  if (state_file.empty())
    state_file = std::filesystem::path(options.model_repository) / ".forklift-state.json";
  if (state_file == "none") state_file.clear();

  std::shared_ptr<StateStore> store;
  if (!options.state_postgres.empty()) {
    store = std::make_shared<PostgresStateStore>(options.state_postgres, state_file);
  } else if (!state_file.empty()) {
    store = std::make_shared<FileStateStore>(state_file);
  } else {
    store = std::make_shared<MemoryStateStore>();
  }

  register_builtin_runtimes();
  MetricsRegistry metrics;
  ModelRegistry registry(options.model_repository, metrics, store);
  std::vector<std::unique_ptr<EventSink>> sinks;
  if (!options.events_dir.empty()) {
    auto opened = FileEventSink::open(options.events_dir, options.events_max_file_mb << 20,
                                      options.events_max_files);
    if (!opened.ok()) {
      log::error("events_unavailable", {{"reason", opened.status().message()}});
      return 1;
    }
    sinks.push_back(std::move(opened).value());
  }
  if (!options.events_postgres.empty()) {
    sinks.push_back(std::make_unique<PostgresEventSink>(options.events_postgres,
                                                        options.events_postgres_max_pending));
  }
  std::unique_ptr<EventLog> events;
  if (!sinks.empty()) {
    events =
        std::make_unique<EventLog>(EventLogOptions{options.events_sample, 65536}, std::move(sinks));
  }
  ShadowRunner shadows(metrics, options.shadow_queue, events.get());
  TimeSeries timeseries(metrics);
  const auto connections = std::make_shared<ConnectionStats>();
  const InferenceService inference(registry, &shadows, events.get());
  const ApiContext ctx{&registry,    &inference,  &metrics,         options.log_requests,
                       events.get(), &timeseries, connections.get()};
  Router router(ctx);
  AdminRouter admin_router(ctx, std::move(token).value(), find_ui(options.ui_dir),
                           options.admin_host_names);
  ServerOptions data_plane = options.server;
  data_plane.stats = connections;
  HttpServer server(data_plane, router);
  HttpServer admin(options.admin, admin_router);
  if (Status s = server.start(); !s.ok()) {
    log::error("listen_failed", {{"reason", s.message()}});
    return 1;
  }
  if (Status s = admin.start(); !s.ok()) {
    log::error("listen_failed", {{"reason", "admin listener: " + s.message()}});
    return 1;
  }
  log::info("admin_listening",
            {{"host", options.admin.host},
             {"port", static_cast<std::int64_t>(admin.port())},
             {"scheme", options.admin.tls_cert_file.empty() ? "http" : "https"}});
  log::info("listening", {{"host", options.server.host},
                          {"port", static_cast<std::int64_t>(server.port())},
                          {"scheme", options.server.tls_cert_file.empty() ? "http" : "https"},
                          {"model_repository", options.model_repository}});
  {
    RepositoryLoader loader(registry, options.poll_seconds);
    Sampler sampler(timeseries);
    std::optional<StateFollower> follower;
    if (store->shared()) follower.emplace(registry, *store);
    int sig = 0;
    sigwait(&signals, &sig);
    log::info("draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    server.drain(std::chrono::milliseconds(static_cast<long>(options.drain_seconds * 1000)));
    admin.drain(std::chrono::milliseconds(1000));
  }
  log::info("stopped");
  return 0;
}

}  // namespace forklift
