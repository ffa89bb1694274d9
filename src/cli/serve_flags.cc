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
                  "Directory holding <model id>/<version>/model.yaml")
      ->required()
      ->check(CLI::ExistingDirectory);
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
  cmd->add_option("--poll-seconds", options.poll_seconds,
                  "Rescan the repository for new versions this often (0: never)")
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
}

// Request logs and shutdown.
void add_logging_flags(CLI::App* cmd, ServeOptions& options) {
  cmd->add_option("--log-requests", options.log_requests,
                  "Fraction of requests to log as JSON lines (0: none, 1: every one)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--drain-seconds", options.drain_seconds,
                  "On SIGTERM, how long in-flight requests may take to finish")
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
  return {cmd, [options] { return run_serve(*options); }};
}

}  // namespace forklift
