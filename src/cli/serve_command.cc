#include "cli/serve_command.h"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "api/admin_router.h"
#include "api/router.h"
#include "common/thread_priority.h"
#include "core/model_registry.h"
#include "core/registry_threads.h"
#include "observability/log.h"
#include "runtimes/builtin.h"
#include "store/postgres_event_sink.h"
#include "store/postgres_state_store.h"

namespace forklift {
namespace {

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

namespace {

// Where deployments are kept: PostgreSQL (shared by replicas), a file, or memory only.
std::shared_ptr<StateStore> open_state_store(const ServeOptions& options) {
  std::filesystem::path state_file = options.state_file;
  if (state_file.empty())
    state_file = std::filesystem::path(options.model_repository) / ".forklift-state.json";
  if (state_file == "none") state_file.clear();
  if (!options.state_postgres.empty()) {
    return std::make_shared<PostgresStateStore>(options.state_postgres, state_file);
  }
  if (!state_file.empty()) return std::make_shared<FileStateStore>(state_file);
  return std::make_shared<MemoryStateStore>();
}

// The prediction event log (null when no sink is configured).
Result<std::unique_ptr<EventLog>> open_event_log(const ServeOptions& options) {
  std::vector<std::unique_ptr<EventSink>> sinks;
  if (!options.events_dir.empty()) {
    auto opened = FileEventSink::open(options.events_dir, options.events_max_file_mb << 20,
                                      options.events_max_files);
    if (!opened.ok()) return opened.status();
    sinks.push_back(std::move(opened).value());
  }
  if (!options.events_postgres.empty()) {
    sinks.push_back(std::make_unique<PostgresEventSink>(options.events_postgres,
                                                        options.events_postgres_max_pending));
  }
  if (sinks.empty()) return std::unique_ptr<EventLog>();
  return std::make_unique<EventLog>(EventLogOptions{options.events_sample, 65536},
                                    std::move(sinks));
}

// Both listeners, started; false (logged) if one cannot listen.
bool start_listeners(const ServeOptions& options, HttpServer& server, HttpServer& admin) {
  if (Status s = server.start(); !s.ok()) {
    log::error("listen_failed", {{"reason", s.message()}});
    return false;
  }
  if (Status s = admin.start(); !s.ok()) {
    log::error("listen_failed", {{"reason", "admin listener: " + s.message()}});
    return false;
  }
  log::info("admin_listening",
            {{"host", options.admin.host},
             {"port", static_cast<std::int64_t>(admin.port())},
             {"scheme", options.admin.tls_cert_file.empty() ? "http" : "https"}});
  log::info("listening", {{"host", options.server.host},
                          {"port", static_cast<std::int64_t>(server.port())},
                          {"scheme", options.server.tls_cert_file.empty() ? "http" : "https"},
                          {"model_repository", options.model_repository}});
  return true;
}

// Blocks SIGTERM and SIGINT in every thread (started after this); the main thread waits for them.
sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

}  // namespace

int run_serve(const ServeOptions& options) {
  // Log lines go to stdout, often a pipe: if its reader goes away, writing must fail with EPIPE
  // (and the line be lost), not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  check_descriptor_limit(options.server.max_connections);
  sigset_t signals = block_stop_signals();
  auto token = read_admin_token(options.admin_token_file);
  if (!token.ok()) {
    log::error("admin_token_unreadable", {{"reason", token.status().message()}});
    return 1;
  }
  if (token->empty()) {
    log::warn("admin_token_missing",
              {{"effect", "control-plane changes are refused until a token is configured"}});
  }
  const std::shared_ptr<StateStore> store = open_state_store(options);
  register_builtin_runtimes();
  MetricsRegistry metrics;
  ModelRegistry registry(options.model_repository, metrics, store);
  auto events = open_event_log(options);
  if (!events.ok()) {
    log::error("events_unavailable", {{"reason", events.status().message()}});
    return 1;
  }
  ShadowRunner shadows(metrics, options.shadow_queue, events->get());
  TimeSeries timeseries(metrics);
  const auto connections = std::make_shared<ConnectionStats>();
  const InferenceService inference(registry, &shadows, events->get());
  const ApiContext ctx{&registry,     &inference,  &metrics,         options.log_requests,
                       events->get(), &timeseries, connections.get()};
  Router router(ctx);
  AdminRouter admin_router(ctx, std::move(token).value(), find_ui(options.ui_dir),
                           options.admin_host_names);
  ServerOptions data_plane = options.server;
  data_plane.stats = connections;
  HttpServer server(data_plane, router);
  HttpServer admin(options.admin, admin_router);
  if (!start_listeners(options, server, admin)) return 1;
  {
    const auto loader = start_repository_poller(registry, options.poll_seconds);
    const auto sampler = start_sampler(timeseries);
    const auto follower = store->shared() ? start_state_follower(registry, *store) : nullptr;
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
