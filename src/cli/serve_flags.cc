// `forklift serve`'s flags (docs/reference/cli.md lists them all), in groups.
#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>

#include "cli/commands.h"
#include "cli/serve_command.h"

namespace forklift {
namespace {

// The data plane: the repository, listeners, limits, timeouts.
void add_data_plane_flags(CLI::App* cmd, ServeOptions& options) {
  cmd->add_option("--model-repository", options.model_repository,
                  "Directory holding <model id>/<version>/model.yaml, or s3://bucket/prefix, or "
                  "an http(s):// static repository")
      ->required()
      ->check([](const std::string& value) -> std::string {
        if (is_remote_repository(value)) return "";
        return CLI::ExistingDirectory(value);
      });
  cmd->add_option("--port", options.server.port, "Port for the data plane (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--host", options.server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--threads", options.server.threads, "Serving threads (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", options.server.max_body_bytes,
                  "Largest request body accepted; larger ones get 413")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", options.server.max_header_bytes,
                  "Largest request header section accepted; larger ones get 431")
      ->capture_default_str();
  cmd->add_option("--max-header-count", options.server.max_header_count,
                  "Most header fields in one request; more get 431")
      ->capture_default_str();
  cmd->add_option("--max-connections", options.server.max_connections,
                  "Connections open at once; beyond it a new one gets 503 and is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option_function<long>(
         "--read-timeout",
         [&options](long s) { options.server.read_timeout = std::chrono::seconds(s); },
         "Seconds a client has to send one whole request, and to read the answer (default 30)")
      ->check(CLI::Range(1L, 3600L));
  cmd->add_option_function<long>(
         "--idle-timeout",
         [&options](long s) { options.server.idle_timeout = std::chrono::seconds(s); },
         "Seconds a kept-alive connection may wait for its next request (default 60)")
      ->check(CLI::Range(1L, 3600L));
  cmd->add_option("--grpc-port", options.grpc_port,
                  "Port for the Open Inference Protocol over gRPC (0: any free port; off unless "
                  "given). Uses --host, --max-body-bytes and the data plane's TLS files")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--otlp-endpoint", options.otlp_endpoint,
                  "Send OpenTelemetry traces (OTLP/HTTP, JSON) to this URL, e.g. "
                  "http://collector:4318/v1/traces (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
                  "else $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces; neither: no traces)");
  cmd->add_option("--trace-sample-ratio", options.trace_sample_ratio,
                  "Fraction of requests traced when the caller's traceparent did not decide")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--server-timing", options.server_timing,
                "Answer every prediction over HTTP with a Server-Timing header (parse, queue, "
                "predict); else only requests sending x-forklift-server-timing");
  cmd->add_option("--memory-budget-mb", options.memory_budget_mb,
                  "Load versions on their first request and evict the least worth keeping to "
                  "stay within this much memory (0: load everything at start)")
      ->capture_default_str();
  cmd->add_option("--cold-start-wait-ms", options.cold_start_wait_ms,
                  "With --memory-budget-mb: how long a request waits for its version to load "
                  "before 503 with Retry-After")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  cmd->add_option("--poll-seconds", options.poll_seconds,
                  "Rescan the repository for new versions this often (0: never; a remote "
                  "repository is still read once at start)")
      ->check(CLI::Range(0.0, 86400.0))  // a day; a larger one would overflow the period
      ->capture_default_str();
}

// The admin API's listener, TLS and token.
void add_admin_flags(CLI::App* cmd, ServeOptions& options) {
  cmd->add_option("--admin-port", options.admin.port, "Port for the admin API (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--admin-host", options.admin.host, "Address for the admin API")
      ->capture_default_str();
  cmd->add_option("--tls-cert", options.server.tls_cert_file,
                  "PEM certificate chain: the data plane speaks only HTTPS (with --tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", options.server.tls_key_file, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  cmd->add_option("--admin-tls-cert", options.admin.tls_cert_file,
                  "PEM certificate chain: the admin API speaks only HTTPS (with --admin-tls-key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--admin-tls-key", options.admin.tls_key_file,
                  "PEM private key for --admin-tls-cert")
      ->check(CLI::ExistingFile);
  cmd->add_option("--admin-host-name", options.admin_host_names,
                  "A host name (besides IP addresses and localhost) under which the admin "
                  "API answers reads without a token; repeatable");
  cmd->add_option("--admin-token-file", options.admin_token_file,
                  "File holding the admin bearer token (else $FORKLIFT_ADMIN_TOKEN)")
      ->check(CLI::ExistingFile);
}

// Shadows, prediction events, the state store and the UI.
void add_state_and_event_flags(CLI::App* cmd, ServeOptions& options) {
  cmd->add_option("--shadow-queue", options.shadow_queue,
                  "Shadow copies that may wait; beyond that they are dropped and counted")
      ->capture_default_str();
  cmd->add_option("--rollout-tick-ms", options.rollout_tick_ms,
                  "How often rollouts are decided (guardrails checked, stages advanced); a "
                  "replica's lease on a rollout lasts five ticks (at least 2 s)")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  cmd->add_option("--feedback-memory-mb", options.feedback_memory_mb,
                  "Memory for predictions kept to join with feedback labels (versions whose "
                  "model.yaml declares quality:); 0 turns feedback off")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--feedback-max-age-hours", options.feedback_max_age_hours,
                  "How long a prediction waits for its label")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 24.0 * 365));
  cmd->add_option("--feedback-token-file", options.feedback_token_file,
                  "File holding the bearer token POST /feedback requires (else "
                  "$FORKLIFT_FEEDBACK_TOKEN; neither: no token is required)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--quality-window-seconds", options.quality_window_seconds,
                  "How far back the live quality figures (MAE, log loss, AUC...) look")
      ->capture_default_str()
      ->check(CLI::Range(60.0, 30.0 * 86400));
  cmd->add_option("--events-dir", options.events_dir,
                  "Write prediction events (JSON lines) to rotating files here");
  cmd->add_option("--events-sample", options.events_sample, "Fraction of requests logged")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--events-max-file-mb", options.events_max_file_mb, "Rotate files at this size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--events-max-files", options.events_max_files, "Event files kept")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--state-file", options.state_file,
                  "Where deployments are kept (default <repository>/.forklift-state.json; "
                  "'none' keeps them in memory only)");
  cmd->add_option("--ui-dir", options.ui_dir,
                  "The web UI's files, served at /ui/ on the admin listener (default: the "
                  "installed ones; 'none' turns the UI off)");
  cmd->add_option("--state-postgres", options.state_postgres,
                  "PostgreSQL connection string (or URI): deployments shared by every replica "
                  "using it; the state file keeps this replica's last known copy")
      ->envname("FORKLIFT_STATE_POSTGRES");
  cmd->add_option("--events-postgres", options.events_postgres,
                  "PostgreSQL connection string (or URI): also write events to the "
                  "forklift_events table, in batches")
      ->envname("FORKLIFT_EVENTS_POSTGRES");
  cmd->add_option("--events-postgres-max-pending", options.events_postgres_max_pending,
                  "Events held in memory while PostgreSQL is unreachable; beyond that the "
                  "oldest are dropped and counted")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--training-jobs", options.training_jobs,
                  "Training jobs that run at once, at the lowest CPU priority; 0: none")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_option("--training-queue", options.training_queue,
                  "Training jobs that may wait; one more is refused")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--training-check-seconds", options.training_check_seconds,
                  "How often each train.yaml's schedule is looked at (jobs due are queued)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--training-postgres", options.training_postgres,
                  "PostgreSQL that training data is read from (data.source postgres or events; "
                  "default: --events-postgres)")
      ->envname("FORKLIFT_TRAIN_POSTGRES");
}

// Request logs, background work and shutdown.
void add_logging_flags(CLI::App* cmd, ServeOptions& options) {
  cmd->add_option("--log-requests", options.log_requests,
                  "Fraction of requests to log as JSON lines (0: none, 1: every one)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--background-priority", options.background_priority,
                  "How loading, admin changes and training step back from serving: idle "
                  "(SCHED_IDLE: only CPU time nothing else wants), nice (a nice value: a small "
                  "steady share) or normal (no lowering)")
      ->capture_default_str()
      ->envname("FORKLIFT_BACKGROUND_PRIORITY")
      ->check(CLI::IsMember({"idle", "nice", "normal"}));
  cmd->add_option("--drain-seconds", options.drain_seconds,
                  "On SIGTERM, how long in-flight requests may take to finish")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve every model in a model repository over HTTP");
  add_data_plane_flags(cmd, *options);
  add_admin_flags(cmd, *options);
  add_state_and_event_flags(cmd, *options);
  add_logging_flags(cmd, *options);
  add_store_flags(cmd, options->remote);
  add_mirror_flags(cmd, options->remote);
  return {cmd, [options] { return run_serve(*options); }};
}

}  // namespace forklift
