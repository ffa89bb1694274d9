// Maps method and path to a handler: the data plane's routes, health and metrics.
#pragma once

#include "api/handlers.h"
#include "api/http_types.h"

namespace forklift {

class Router final : public RequestHandler {
 public:
  explicit Router(ApiContext ctx) : ctx_(ctx) {}

  // Answers one request. Never throws; an unexpected exception becomes a 500.
  void handle(const HttpRequest& req, HttpResponse& res) const override;

 private:
  void route(const HttpRequest& req, HttpResponse& res) const;
  void metrics(HttpResponse& res) const;
  void readiness(HttpResponse& res, bool v2) const;

  ApiContext ctx_;
};

}  // namespace forklift
