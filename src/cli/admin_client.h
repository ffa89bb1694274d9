// A minimal HTTP/1.1 client for the admin API, used by the control-plane CLI commands.
#pragma once

#include <chrono>
#include <string>

#include "forklift/status.h"

namespace forklift {

struct AdminEndpoint {
  std::string url = "http://127.0.0.1:8081";  // http://host:port or https://host:port
  std::string token;                          // bearer token; empty sends none
  std::string actor;                          // recorded in the audit log
  std::string ca_file;  // https: PEM certificates trusted besides the system's
  // For the whole call: a deploy or promote may load and self-test a model before answering.
  std::chrono::seconds timeout{60};
};

struct AdminAnswer {
  unsigned status = 0;
  std::string body;
};

// Sends one request and reads the whole answer. A Status error means no answer was received
// (bad URL, connection refused, timeout); HTTP errors come back as an AdminAnswer.
Result<AdminAnswer> admin_call(const AdminEndpoint& endpoint, const std::string& method,
                               const std::string& path, const std::string& body = {});

}  // namespace forklift
