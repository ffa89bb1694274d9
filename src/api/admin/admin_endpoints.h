// The admin API's endpoints, one function each; AdminRouter (admin_router.h) checks the token
// and the Host header, then dispatches here by path and method.
#pragma once

#include <string>
#include <string_view>

#include "api/handlers.h"
#include "api/http_types.h"

namespace forklift {

// One admin API call, as the router hands it to an endpoint.
struct AdminCall {
  const HttpRequest& req;
  HttpResponse& res;
  const ApiContext& ctx;
  bool with_token = false;  // the request carries the right admin token
  std::string actor;        // who acts, for the audit log (x-forklift-actor, else "admin")
};

void post_login(const AdminCall& call);
void get_timeseries(const AdminCall& call);
void get_models(const AdminCall& call);
void get_audit(const AdminCall& call);
void get_model(const AdminCall& call, std::string_view model_id);
void get_deployment(const AdminCall& call, std::string_view model_id);
void put_deployment(const AdminCall& call, std::string_view model_id);
void post_promote(const AdminCall& call, std::string_view model_id);
void post_rollback(const AdminCall& call, std::string_view model_id);
void post_reload(const AdminCall& call, std::string_view model_id, std::string_view version);
// Rollouts: GET the current (or last) one; POST to start one; POST pause, resume, abort.
void get_rollout(const AdminCall& call, std::string_view model_id);
void post_rollout(const AdminCall& call, std::string_view model_id);
void post_rollout_step(const AdminCall& call, std::string_view model_id, std::string_view step);
// The Open Inference Protocol model repository extension, as Triton speaks it.
void post_repository_index(const AdminCall& call);
void post_repository_load(const AdminCall& call, std::string_view model_id, bool load);

}  // namespace forklift
