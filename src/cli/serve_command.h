#pragma once

#include <string>

#include "server/http_server.h"

namespace forklift {

struct ServeOptions {
  std::string model_repository;
  ServerOptions server;
  double poll_seconds = 0;  // rescan the repository this often; 0 turns polling off
  double drain_seconds = 30;
  double log_requests = 0;  // fraction of requests logged
};

// `forklift serve`: serves every model in the repository until SIGTERM or SIGINT. Returns the
// process exit code.
int run_serve(const ServeOptions& options);

}  // namespace forklift
