// The admin API (control plane), served on its own listener: read and change deployments,
// promote, roll back, the model repository extension (index, load, unload), the audit log.
//
// Every mutating call (POST, PUT) needs `Authorization: Bearer <token>`; the comparison takes the
// same time whatever the token's content. Reads need no token (the listener is bound to loopback
// by default) but, without one, are answered only when the Host header is an IP address,
// localhost or one of `host_names`: a page whose name was rebound to this address (DNS
// rebinding) cannot read them.
//
// Changes (which may load and self-test models) run one at a time on a thread of their own, not
// on the listener's loop: reads, refusals and the UI never wait for a load.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api/handlers.h"
#include "api/http_types.h"
#include "common/serial_worker.h"

namespace forklift {

class AdminRouter final : public RequestHandler {
 public:
  // `ui_dir`: the web UI's files, served under /ui/ (empty: no UI). `host_names`: names besides
  // localhost under which unauthenticated reads are answered.
  AdminRouter(ApiContext ctx, std::string token, std::filesystem::path ui_dir = {},
              std::vector<std::string> host_names = {});
  ~AdminRouter() override;

  void handle(const HttpRequest& req, HttpResponse& res) const override;

 private:
  // Answers on the calling thread: route() with an unexpected exception turned into a 500.
  void handle_now(const HttpRequest& req, HttpResponse& res) const;
  // Dispatches by path and method to the endpoints (admin/admin_endpoints.h).
  void route(const HttpRequest& req, HttpResponse& res) const;
  // The token and Host checks: false (and `res` filled) when the request is refused.
  bool admitted(const HttpRequest& req, bool with_token, HttpResponse& res) const;
  bool authorized(const HttpRequest& req) const;
  bool host_allowed(std::string_view host) const;
  // Runs an authorized change on changes_ and answers when it is done.
  void defer_change(const HttpRequest& req) const;

  void serve_ui(std::string_view path, HttpResponse& res) const;

  ApiContext ctx_;
  std::string token_;
  std::filesystem::path ui_dir_;
  std::vector<std::string> host_names_;
  std::unique_ptr<SerialWorker> changes_;
};

// Compares in time that depends only on the lengths, not on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace forklift
