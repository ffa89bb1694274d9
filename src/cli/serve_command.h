#pragma once

#include <string>
#include <vector>

#include "cli/remote_repository.h"
#include "server/http_server.h"

namespace forklift {

struct ServeOptions {
  // A directory, or object storage (s3://bucket/prefix, http(s)://site/path) mirrored into
  // a local directory under remote.cache_dir.
  std::string model_repository;
  RemoteRepositoryFlags remote;
  ServerOptions server;
  // Admin calls may load and self-test models: their thread runs at a lower CPU priority.
  ServerOptions admin{.host = "127.0.0.1",
                      .port = 8081,
                      .threads = 1,
                      .nice = 10,
                      .tls_cert_file = {},
                      .tls_key_file = {}};
  std::string admin_token_file;  // else $FORKLIFT_ADMIN_TOKEN; neither: mutating calls refused
  // Host names (besides IP addresses and localhost) under which the admin API answers reads
  // that carry no token.
  std::vector<std::string> admin_host_names;
  std::string state_file;  // default <repository>/.forklift-state.json; "none" disables
  // A libpq connection string or URI: deployments shared with every replica using the same
  // database (the state file then keeps this replica's last known copy).
  std::string state_postgres;
  double poll_seconds = 0;  // rescan the repository this often; 0 turns polling off
  // How background work (loads, admin changes, training) steps back from serving.
  std::string background_priority = "idle";
  // Many models in bounded memory: 0 loads every version at once (no budget).
  std::size_t memory_budget_mb = 0;
  std::int64_t cold_start_wait_ms = 5000;  // a request waits this long for its version's load
  double drain_seconds = 30;
  double log_requests = 0;               // fraction of requests logged
  std::size_t shadow_queue = 1024;       // shadow copies waiting; more are dropped and counted
  std::int64_t rollout_tick_ms = 1000;   // how often the rollout driver decides
  std::size_t feedback_memory_mb = 64;   // predictions kept for feedback labels; 0: feedback off
  double feedback_max_age_hours = 168;   // and for at most this long
  double quality_window_seconds = 3600;  // live quality figures cover this much time
  // Labels drive the quality guardrail: with a token, POST /feedback needs it (else
  // $FORKLIFT_FEEDBACK_TOKEN; neither: /feedback is open to whoever reaches the data plane).
  std::string feedback_token_file;
  std::string events_dir;  // empty: no prediction events
  double events_sample = 1.0;
  std::size_t events_max_file_mb = 64;
  std::size_t events_max_files = 10;
  std::string ui_dir;  // the web UI's files (default: installed, else the source tree); "none"
  std::string events_postgres;  // a libpq connection string: events also go to a table
  std::size_t events_postgres_max_pending = 100000;
  // Training jobs (training/job_queue.h): how many run at once (0: none), how many may wait, and
  // the database their data.source postgres and events read (default: --events-postgres).
  std::size_t training_jobs = 1;
  std::size_t training_queue = 16;
  double training_check_seconds = 60;  // how often train.yaml schedules are looked at
  std::string training_postgres;
  // The gRPC listener (Open Inference Protocol): off (-1) unless a port is given (0: any free
  // port). It listens on --host, with the data plane's TLS files and --max-body-bytes.
  int grpc_port = -1;
  // OpenTelemetry traces over OTLP/HTTP to this URL (else $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  // else $OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; none: no traces).
  std::string otlp_endpoint;
  double trace_sample_ratio = 0.01;  // of requests whose caller did not decide
  bool server_timing = false;        // Server-Timing on every prediction's answer
};

// `forklift serve`: serves every model in the repository until SIGTERM or SIGINT. Returns the
// process exit code.
int run_serve(const ServeOptions& options);

}  // namespace forklift
