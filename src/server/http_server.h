// HTTP/1.1 transport: one event loop (io_context) per thread, each with its own SO_REUSEPORT
// acceptor on the same port, so the kernel spreads connections and no lock is shared between
// loops. Requests are answered on the loop that read them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/http_types.h"
#include "forklift/status.h"

namespace forklift {

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;  // 0 picks a free port (see HttpServer::port)
  unsigned threads = 0;       // 0: one per core
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_header_count = 100;  // header fields in one request; more get 431
  // Connections open at once (all loops together); a connection beyond it is answered 503 with
  // Retry-After and closed at once, without reading its request.
  std::size_t max_connections = 10000;
  std::shared_ptr<ConnectionStats> stats = nullptr;  // counted here when set
  std::chrono::seconds idle_timeout{60};             // keep-alive connection with no request
  std::chrono::seconds read_timeout{30};             // time to receive one whole request
  int nice = 0;  // > 0 lowers the loops' CPU priority (the admin listener, whose calls load models)
  // PEM files; with both set the listener speaks only TLS (1.2 or newer).
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  // `handler` must outlive the server.
  HttpServer(ServerOptions options, const RequestHandler& handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the loops. Fails with a clear message if the address is taken.
  Status start();
  std::uint16_t port() const;

  // Stops accepting, lets in-flight requests finish (their responses say Connection: close),
  // closes idle connections, then joins the loops; after `grace` the loops are stopped anyway.
  void drain(std::chrono::milliseconds grace);

 private:
  Status load_tls();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace forklift
