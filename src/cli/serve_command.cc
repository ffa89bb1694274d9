#include "cli/serve_command.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "api/admin_router.h"
#include "api/router.h"
#include "cli/exit_codes.h"
#include "common/thread_priority.h"
#include "core/model_registry.h"
#include "core/registry_threads.h"
#include "core/rollout/rollout_driver.h"
#ifdef FORKLIFT_HAS_GRPC
#include "grpc_api/grpc_listener.h"
#endif
#include "observability/log.h"
#include "observability/otlp_exporter.h"
#include "runtimes/builtin.h"
#include "store/postgres_event_sink.h"
#include "store/postgres_prediction_lookup.h"
#include "store/postgres_state_store.h"
#include "store/repository_mirror.h"
#include "training/job_queue.h"
#include "training/job_scheduler.h"

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
// A bearer token from `file`, else from the environment variable `env`; `what` names it in
// errors ("admin", "feedback"). Empty when neither is set.
// `must_hold_one`: a file given that holds no token is an error (for a token whose absence
// opens a route, a failed secret mount must not do that silently).
Result<std::string> read_token(const std::string& file, const char* env, const std::string& what,
                               bool must_hold_one = false) {
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return NotFound("cannot read " + what + " token file '" + file + "'");
    std::getline(in, token);
  } else if (const char* value = std::getenv(env)) {
    token = value;
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    if (must_hold_one && !file.empty()) {
      return InvalidArgument("the " + what + " token file '" + file + "' is empty");
    }
    return std::string();
  }
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  if (token.size() < 16) {
    return InvalidArgument("the " + what + " token " +
                           (file.empty() ? "in $" + std::string(env) : "in '" + file + "'") +
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

#ifdef FORKLIFT_HAS_GRPC
// The gRPC listener when --grpc-port asks for one (else null); an error if it cannot listen.
Result<std::unique_ptr<grpc_api::GrpcListener>> start_grpc(const ServeOptions& options,
                                                           const ApiContext& ctx,
                                                           const std::string& token) {
  if (options.grpc_port < 0) return std::unique_ptr<grpc_api::GrpcListener>();
  grpc_api::GrpcListenerOptions o;
  o.host = options.server.host;
  o.port = static_cast<std::uint16_t>(options.grpc_port);
  o.max_message_bytes = options.server.max_body_bytes;
  o.threads = options.server.threads;
  o.answer_timeout = options.server.read_timeout;
  o.idle_timeout = options.server.idle_timeout;
  o.tls_cert_file = options.server.tls_cert_file;
  o.tls_key_file = options.server.tls_key_file;
  o.admin_token = token;
  auto listener = std::make_unique<grpc_api::GrpcListener>(std::move(o), ctx);
  if (Status s = listener->start(); !s.ok()) return s;
  log::info("grpc_listening", {{"host", options.server.host},
                               {"port", static_cast<std::int64_t>(listener->port())},
                               {"tls", !options.server.tls_cert_file.empty()}});
  return listener;
}
#endif

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

// The tracer when traces have somewhere to go (else null); an error for an unusable endpoint.
Result<std::unique_ptr<Tracer>> make_tracer(const ServeOptions& options) {
  std::string endpoint = options.otlp_endpoint;
  if (endpoint.empty()) {
    if (const char* e = std::getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e && *e) {
      endpoint = e;
    } else if (const char* base = std::getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base && *base) {
      endpoint = std::string(base);
      if (endpoint.ends_with('/')) endpoint.pop_back();
      endpoint += "/v1/traces";
    }
  }
  if (endpoint.empty()) return std::unique_ptr<Tracer>();
  if (!valid_otlp_endpoint(endpoint)) {
    return InvalidArgument("the OTLP endpoint must be an http:// or https:// URL");
  }
  OtlpOptions otlp;
  otlp.endpoint = endpoint;
  if (const char* name = std::getenv("OTEL_SERVICE_NAME"); name && *name) {
    otlp.service_name = std::string(name).substr(0, 128);
  }
  otlp.service_version = FORKLIFT_VERSION;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) otlp.service_instance = host;
  TracerOptions t;
  t.sample_ratio = options.trace_sample_ratio;
  log::info("tracing", {{"endpoint", endpoint}, {"sample_ratio", options.trace_sample_ratio}});
  return std::make_unique<Tracer>(t, std::make_unique<OtlpHttpExporter>(std::move(otlp)));
}

// The mirror of an object-store repository (not read yet: see start_mirror_poller).
Result<std::unique_ptr<RepositoryMirror>> open_mirror(const ServeOptions& options,
                                                      RepositoryStats& stats) {
  const std::string& url = options.model_repository;
  auto store = open_object_store(url, options.remote);
  if (!store.ok()) return store.status();
  const std::filesystem::path root = cache_root(options.remote);
  auto cache = ContentCache::open(root / "blobs");
  if (!cache.ok()) return cache.status();
  MirrorOptions o;
  o.download_threads = options.remote.download_threads;
  o.max_version_bytes = static_cast<std::uint64_t>(options.remote.max_version_mb) << 20;
  // One mirror per repository: the URL without a trailing '/', and the S3 endpoint it is read
  // from (the same s3:// URL on two stores is two repositories).
  std::string key = url;
  while (key.ends_with('/')) key.pop_back();
  if (key.starts_with("s3://")) key += " " + options.remote.s3_endpoint;
  const auto dir = mirror_dir_for(root, key);
  log::info("repository_mirroring", {{"from", url}, {"into", dir.string()}});
  auto mirror = std::make_unique<RepositoryMirror>(std::move(store).value(), dir,
                                                   std::move(cache).value(), o, &stats);
  if (Status s = mirror->claim(); !s.ok()) return s;
  return mirror;
}

// One poll of the store, logged; whether the mirror changed (nullopt: the poll failed).
std::optional<bool> sync_mirror(RepositoryMirror& mirror) {
  const auto started = std::chrono::steady_clock::now();
  auto report = mirror.sync();
  if (!report.ok()) {
    log::warn("repository_sync_failed",
              {{"from", mirror.store().url()},
               {"reason", report.status().message()},
               {"effect", "serving what was mirrored before, if anything; polling goes on"}});
    return std::nullopt;
  }
  if (report->changed() || report->rejected > 0) {
    log::info(
        "repository_synced",
        {{"from", mirror.store().url()},
         {"added", report->added},
         {"unchanged", report->unchanged},
         {"removed", report->removed},
         {"rejected", report->rejected},
         {"seconds",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}});
  }
  return report->changed();
}

// Polls the store every `poll_seconds` (0: only once, at start), off the serving threads; a
// poll that changed the mirror has the registry rescan it at once. With an earlier run's mirror
// on disk, that is served at once and the first poll runs here; without one, the first poll runs
// before the registry's first load (start_repository_poller's before_first), so /readyz waits
// for it, and the listeners never do.
std::unique_ptr<PeriodicThread> start_mirror_poller(RepositoryMirror& mirror,
                                                    ModelRegistry& registry, double poll_seconds,
                                                    bool first_poll_here) {
  using namespace std::chrono;
  const auto period = poll_seconds > 0
                          ? milliseconds(static_cast<std::int64_t>(poll_seconds * 1000))
                          : duration_cast<milliseconds>(hours(24 * 365));
  return std::make_unique<PeriodicThread>(
      period,
      [&mirror, &registry, poll_seconds] {
        if (poll_seconds > 0 && sync_mirror(mirror).value_or(false)) registry.sync();
      },
      [&mirror, &registry, first_poll_here] {
        lower_this_thread_priority(10);
        if (first_poll_here && sync_mirror(mirror).value_or(false)) registry.sync();
      },
      [&mirror] { mirror.stop(); });  // shutdown cancels a poll in progress
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

int run_serve(const ServeOptions& given) {
  ServeOptions options = given;
  // Log lines go to stdout, often a pipe: if its reader goes away, writing must fail with EPIPE
  // (and the line be lost), not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  // Before any thread starts: those that lower their priority read it.
  const auto background = parse_background_priority(options.background_priority);
  if (!background) {
    log::error("bad_flag", {{"flag", "--background-priority"},
                            {"reason", "want idle, nice or normal, not '" +
                                           options.background_priority + "'"}});
    return kExitUsage;
  }
  set_background_priority(*background);
  check_descriptor_limit(options.server.max_connections);
  sigset_t signals = block_stop_signals();
  auto token = read_token(options.admin_token_file, "FORKLIFT_ADMIN_TOKEN", "admin");
  if (!token.ok()) {
    log::error("admin_token_unreadable", {{"reason", token.status().message()}});
    return kExitFailed;
  }
  if (token->empty()) {
    log::warn("admin_token_missing",
              {{"effect", "control-plane changes are refused until a token is configured"}});
  }
  // An object-store repository is mirrored into a local directory, which the rest reads.
  RepositoryStats repository_stats;
  std::unique_ptr<RepositoryMirror> mirror;
  if (is_remote_repository(options.model_repository)) {
    auto opened = open_mirror(options, repository_stats);
    if (!opened.ok()) {
      log::error("repository_unusable", {{"reason", opened.status().message()}});
      return kExitFailed;
    }
    mirror = std::move(opened).value();
    options.model_repository = mirror->mirror_dir().string();
    if (options.training_jobs > 0) {
      // The mirror holds what the store holds: a version trained into it would be removed by the
      // next poll. Train against a local repository and push the result.
      options.training_jobs = 0;
      log::warn("training_disabled",
                {{"reason", "the model repository is remote (train locally, then forklift push)"}});
    }
  }
  const std::shared_ptr<StateStore> store = open_state_store(options);
  register_builtin_runtimes();
  MetricsRegistry metrics;
  auto tracer = make_tracer(options);
  if (!tracer.ok()) {
    log::error("tracing_unavailable", {{"reason", tracer.status().message()}});
    return kExitFailed;
  }
  ModelRegistry registry(options.model_repository, metrics, store);
  if (options.memory_budget_mb > 0) {
    registry.enable_memory_budget(
        {.budget_bytes = static_cast<std::uint64_t>(options.memory_budget_mb) << 20,
         .max_wait = std::chrono::milliseconds(options.cold_start_wait_ms)});
    log::info("memory_budget", {{"budget_mb", static_cast<std::int64_t>(options.memory_budget_mb)},
                                {"cold_start_wait_ms", options.cold_start_wait_ms}});
  }
  auto events = open_event_log(options);
  if (!events.ok()) {
    log::error("events_unavailable", {{"reason", events.status().message()}});
    return kExitFailed;
  }
  ShadowRunner shadows(metrics, options.shadow_queue, events->get());
  shadows.set_tracer(tracer->get());
  TimeSeries timeseries(metrics);
  const auto connections = std::make_shared<ConnectionStats>();
  std::unique_ptr<FeedbackService> feedback;
  if (options.feedback_memory_mb > 0) {
    feedback = std::make_unique<FeedbackService>(
        FeedbackOptions{
            options.feedback_memory_mb << 20,
            std::chrono::seconds(static_cast<std::int64_t>(options.feedback_max_age_hours * 3600)),
            std::chrono::seconds(static_cast<std::int64_t>(options.quality_window_seconds))},
        metrics, events->get());
    if (!options.events_postgres.empty()) {
      // Late labels find their prediction in the events table once it has left memory.
      feedback->join_late_labels(
          std::make_unique<PostgresPredictionLookup>(options.events_postgres,
                                                     std::chrono::seconds(static_cast<std::int64_t>(
                                                         options.feedback_max_age_hours * 3600))),
          [&registry](const std::string& model_id, std::int64_t version) {
            const auto snapshot = registry.snapshot();
            const auto m = snapshot->models.find(model_id);
            if (m == snapshot->models.end()) return QualitySpec{};
            const auto v = m->second.serving.find(version);
            return v == m->second.serving.end() ? QualitySpec{} : v->second->manifest.quality;
          });
    }
  }
  const InferenceService inference(registry, &shadows, events->get(), feedback.get());
  auto feedback_token =
      read_token(options.feedback_token_file, "FORKLIFT_FEEDBACK_TOKEN", "feedback", true);
  if (!feedback_token.ok()) {
    log::error("feedback_token_unreadable", {{"reason", feedback_token.status().message()}});
    return kExitFailed;
  }
  std::unique_ptr<training::JobQueue> jobs;
  if (options.training_jobs > 0) {
    training::JobQueueOptions o;
    o.repository = options.model_repository;
    o.workers = options.training_jobs;
    o.max_queued = options.training_queue;
    o.postgres =
        options.training_postgres.empty() ? options.events_postgres : options.training_postgres;
    o.code_version = "forklift " FORKLIFT_VERSION;
    o.production_version = [&registry](const std::string& model_id) -> std::int64_t {
      const auto snapshot = registry.snapshot();
      const auto m = snapshot->models.find(model_id);
      if (m == snapshot->models.end()) return 0;
      const auto& routes = m->second.control.deployment.routes;
      if (!routes.empty()) {
        return std::max_element(routes.begin(), routes.end(),
                                [](const auto& a, const auto& b) { return a.weight < b.weight; })
            ->version;
      }
      const auto newest = m->second.default_version();
      return newest ? newest->version : 0;
    };
    o.on_published = [&registry](const std::string&) { registry.sync(); };
    o.before_job = [&registry](const std::string&) { registry.sync(); };
    jobs = std::make_unique<training::JobQueue>(std::move(o));
  }
  const ApiContext ctx{&registry,
                       &inference,
                       &metrics,
                       options.log_requests,
                       events->get(),
                       &timeseries,
                       connections.get(),
                       feedback.get(),
                       std::move(feedback_token).value(),
                       jobs.get(),
                       tracer->get(),
                       options.server_timing,
                       mirror ? &repository_stats : nullptr};
  Router router(ctx);
  AdminRouter admin_router(ctx, token.value(), find_ui(options.ui_dir), options.admin_host_names);
#ifdef FORKLIFT_HAS_GRPC
  auto grpc = start_grpc(options, ctx, token.value());
  if (!grpc.ok()) {
    log::error("listen_failed", {{"reason", "gRPC listener: " + grpc.status().message()}});
    return kExitFailed;
  }
#else
  if (options.grpc_port >= 0) {
    log::error("listen_failed", {{"reason",
                                  "this forklift was built without gRPC "
                                  "(apt install libgrpc++-dev protobuf-compiler-grpc "
                                  "and build again)"}});
    return kExitFailed;
  }
#endif
  ServerOptions data_plane = options.server;
  data_plane.stats = connections;
  HttpServer server(data_plane, router);
  HttpServer admin(options.admin, admin_router);
  if (!start_listeners(options, server, admin)) return kExitFailed;
  {
    const bool fresh_mirror = mirror && !mirror->has_versions();
    // A fresh mirror has nothing to serve: the first load (and /readyz) waits for a poll that
    // succeeds, tried again every few seconds (a store down, wrong credentials: the log says).
    const auto loader =
        start_repository_poller(registry, options.poll_seconds, [&mirror, fresh_mirror] {
          if (!fresh_mirror) return;
          auto wait = std::chrono::seconds(1);
          while (!sync_mirror(*mirror) && mirror->pause(wait)) {
            wait = std::min(wait * 2, std::chrono::seconds(30));
          }
        });
    const auto remote =
        mirror ? start_mirror_poller(*mirror, registry, options.poll_seconds, !fresh_mirror)
               : nullptr;
    const auto sampler = start_sampler(timeseries);
    const auto follower = store->shared() ? start_state_follower(registry, *store) : nullptr;
    RolloutDriver rollouts(registry, metrics, *store,
                           std::chrono::milliseconds(options.rollout_tick_ms), feedback.get());
    const auto driver = start_rollout_driver(rollouts);
    std::unique_ptr<training::JobScheduler> scheduler;
    std::unique_ptr<PeriodicThread> schedule;
    if (jobs) {
      scheduler = std::make_unique<training::JobScheduler>(*jobs, registry, *store, feedback.get(),
                                                           options.model_repository);
      schedule = training::start_job_scheduler(
          *scheduler, std::chrono::milliseconds(
                          static_cast<std::int64_t>(options.training_check_seconds * 1000)));
    }
    int sig = 0;
    sigwait(&signals, &sig);
    log::info("draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    const std::chrono::milliseconds grace(static_cast<long>(options.drain_seconds * 1000));
#ifdef FORKLIFT_HAS_GRPC
    // Both data-plane listeners drain at once, each within the grace period.
    std::thread grpc_drain;
    if (*grpc) grpc_drain = std::thread([&] { (*grpc)->drain(grace); });
    server.drain(grace);
    if (grpc_drain.joinable()) grpc_drain.join();
#else
    server.drain(grace);
#endif
    admin.drain(std::chrono::milliseconds(1000));
  }
  log::info("stopped");
  return 0;
}

}  // namespace forklift
