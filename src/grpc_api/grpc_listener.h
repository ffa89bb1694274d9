// The gRPC listener (--grpc-port): the Open Inference Protocol's GRPCInferenceService and the
// model repository extension, beside the HTTP listener. ModelInfer runs on the listener's own
// completion-queue threads (infer_calls.h); the other calls on gRPC's callback threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/handlers.h"
#include "forklift/status.h"

namespace forklift::grpc_api {

struct GrpcListenerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 0;  // 0 picks a free port (see port())
  // The largest request message, as the HTTP listener's --max-body-bytes bounds a body.
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  // Memory for all connections: gRPC's resource quota (its buffers), and the bound on the
  // requests being answered at once (a call beyond it is refused RESOURCE_EXHAUSTED).
  std::size_t max_memory_bytes = 256 * 1024 * 1024;
  std::uint32_t max_concurrent_streams = 256;  // per connection (HTTP/2 SETTINGS)
  unsigned threads = 0;  // ModelInfer's threads (0: one per core), as --threads for HTTP
  // An answer the client has not taken after this long is cancelled; also the time a new
  // connection has to complete its handshake (--read-timeout).
  std::chrono::seconds answer_timeout{30};
  std::chrono::seconds idle_timeout{60};  // a connection without calls is closed (--idle-timeout)
  // PEM files; with both set the listener speaks only TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string admin_token;  // for the repository extension; empty: its calls are refused
};

class GrpcListener {
 public:
  // `ctx` (and what it points to) must outlive the listener.
  GrpcListener(GrpcListenerOptions options, const ApiContext& ctx);
  ~GrpcListener();
  GrpcListener(const GrpcListener&) = delete;
  GrpcListener& operator=(const GrpcListener&) = delete;

  // Binds and starts serving; a clear error if the address is taken or TLS files are unusable.
  Status start();
  std::uint16_t port() const;

  // ServerReady answers false, new calls are refused, calls in flight get up to `grace` to
  // finish (then they are cancelled), and the listener stops.
  void drain(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace forklift::grpc_api
