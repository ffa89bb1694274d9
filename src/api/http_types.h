// The API layer's view of HTTP: a parsed request in, a response out. The transport (src/server)
// fills and sends these; nothing here depends on the HTTP library.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/status.h"
#include "observability/tracer.h"

namespace forklift {

struct HttpResponse;

// Code that fills a deferred response; it runs on the connection's own event loop.
using FillResponse = std::function<void(HttpResponse&)>;
// Finishes a deferred request: call exactly once, from any thread, with the code that fills it.
using ResumeResponse = std::function<void(FillResponse)>;

// Offered by a transport that can answer a request later (the data-plane listener), so that a
// handler waiting for a batching queue does not hold up the event loop's other connections.
class ResponseDeferral {
 public:
  // What defer() is given to wait as long as the listener's --read-timeout.
  static constexpr std::chrono::seconds kReadTimeout{0};

  // The handler answers later: it must not touch the response again until its fill code runs.
  // The connection waits up to `answer_within` for it (kReadTimeout: the listener's read
  // timeout), then is closed.
  virtual ResumeResponse defer(std::chrono::seconds answer_within) = 0;

 protected:
  ~ResponseDeferral() = default;
};

struct HttpRequest {
  std::string_view method;         // "GET", "POST", ... (a HEAD is routed as "GET")
  std::string_view target;         // path and query, e.g. "/v2/models/eta/infer"
  std::string* body = nullptr;     // mutable: the JSON parser pads it in place instead of copying
  std::string_view request_id;     // the client's x-request-id, if any
  std::string_view authorization;  // the Authorization header, for the admin API
  std::string_view actor;          // x-forklift-actor: who is making a control-plane change
  std::string_view host;           // the Host header (empty when absent)
  std::string_view traceparent;    // W3C trace context, when the caller sent one
  std::string_view tracestate;
  bool server_timing = false;  // x-forklift-server-timing: answer with a Server-Timing header
  // Set by the router for a request it traces or times: handlers record their spans in it.
  std::shared_ptr<RequestTrace> trace;
  ResponseDeferral* deferral = nullptr;  // null: the handler must answer before it returns
  bool head = false;  // the client sent HEAD: the transport leaves the body out; logs say HEAD
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string request_id;
  // Which model and version answered (empty / 0 for other routes), for the request log.
  std::string model_id;
  std::int64_t model_version = 0;

  void json(unsigned code, std::string text) {
    status = code;
    content_type = "application/json";
    body = std::move(text);
  }
};

// What the transport counts about connections, read by the /metrics route.
struct ConnectionStats {
  std::atomic<std::int64_t> open{0};
  std::atomic<std::uint64_t> rejected{0};  // refused because --max-connections were open
  std::atomic<std::uint64_t> tls_handshake_failures{0};  // TLS listeners: handshakes that failed
  // accept() failures that paused the listener (out of descriptors or memory)
  std::atomic<std::uint64_t> accept_failures{0};
};

// HTTP status for a Status code: 400, 404, 409, 503, 500.
unsigned http_status(const Status& status);

// What a listener hands each request to. Implementations must be thread-safe and must not throw.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual void handle(const HttpRequest& req, HttpResponse& res) const = 0;
};

}  // namespace forklift
