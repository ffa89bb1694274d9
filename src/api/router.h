// Maps method and path to a handler: the data plane's routes, health and metrics.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "api/handlers.h"
#include "api/http_types.h"

namespace forklift {

class Router final : public RequestHandler {
 public:
  explicit Router(ApiContext ctx) : ctx_(ctx) {}

  // Answers one request. Never throws; an unexpected exception becomes a 500.
  void handle(const HttpRequest& req, HttpResponse& res) const override;

 private:
  // What the request log needs of a request; its views stay valid until the answer is sent.
  struct RequestLine {
    std::string_view method;
    std::string_view target;
    std::chrono::steady_clock::time_point start;  // set only when requests are logged
    std::shared_ptr<RequestTrace> trace;          // when the request is traced or timed
    bool server_timing = false;                   // answer with a Server-Timing header
  };
  class AccountingDeferral;

  void route(const HttpRequest& req, HttpResponse& res) const;
  // Counts the response by status, writes the sampled request log line, ends the request's
  // server span and adds its Server-Timing header.
  void account(const RequestLine& line, HttpResponse& res) const;
  // The trace of a request to a prediction route (null when it is neither sampled nor timed).
  std::shared_ptr<RequestTrace> trace_for(const HttpRequest& req) const;
  void metrics(HttpResponse& res) const;
  void readiness(HttpResponse& res, bool v2) const;

  ApiContext ctx_;
};

}  // namespace forklift
