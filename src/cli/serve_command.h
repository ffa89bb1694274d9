#pragma once

#include <string>
#include <vector>

#include "server/http_server.h"

namespace forklift {

struct ServeOptions {
  std::string model_repository;
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
  double drain_seconds = 30;
  double log_requests = 0;          // fraction of requests logged
  std::size_t shadow_queue = 1024;  // shadow copies waiting; more are dropped and counted
  std::string events_dir;           // empty: no prediction events
  double events_sample = 1.0;
  std::size_t events_max_file_mb = 64;
  std::size_t events_max_files = 10;
  std::string ui_dir;  // the web UI's files (default: installed, else the source tree); "none"
  std::string events_postgres;  // a libpq connection string: events also go to a table
  std::size_t events_postgres_max_pending = 100000;
};

// `forklift serve`: serves every model in the repository until SIGTERM or SIGINT. Returns the
// process exit code.
int run_serve(const ServeOptions& options);

}  // namespace forklift
