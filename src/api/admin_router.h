// The admin API (control plane), served on its own listener: read and change deployments,
// promote, roll back, the model repository extension (index, load, unload), the audit log.
//
// Every mutating call (POST, PUT) needs `Authorization: Bearer <token>`; the comparison takes the
// same time whatever the token's content. Reads need no token: the listener is bound to loopback
// by default.
#pragma once

#include <filesystem>
#include <string>

#include "api/handlers.h"
#include "api/http_types.h"

namespace forklift {

class AdminRouter final : public RequestHandler {
 public:
  // `ui_dir`: the web UI's files, served under /ui/ (empty: no UI).
  AdminRouter(ApiContext ctx, std::string token, std::filesystem::path ui_dir = {})
      : ctx_(ctx), token_(std::move(token)), ui_dir_(std::move(ui_dir)) {}

  void handle(const HttpRequest& req, HttpResponse& res) const override;

 private:
  void route(const HttpRequest& req, HttpResponse& res) const;
  bool authorized(const HttpRequest& req) const;

  void serve_ui(std::string_view path, HttpResponse& res) const;

  ApiContext ctx_;
  std::string token_;
  std::filesystem::path ui_dir_;
};

// Compares in time that depends only on the lengths, not on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace forklift
