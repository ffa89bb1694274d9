// Control-plane commands: `forklift status | promote | rollback | split | shadow | reload |
// deploy | undeploy`,
// each one call to a server's admin API.
//
// Exit status, for scripts: 0 done; 1 the server refused (its message is printed); 2 bad usage;
// 3 the server could not be reached.
#pragma once

#include <string>
#include <vector>

#include "cli/admin_client.h"

namespace forklift {

int run_status(const AdminEndpoint& endpoint, const std::string& model_id);
// `force` overrides the server's schema compatibility guard.
int run_promote(const AdminEndpoint& endpoint, const std::string& model_id, long version,
                bool force);
int run_rollback(const AdminEndpoint& endpoint, const std::string& model_id);
// `routes` like {"1=90", "2=10"}: version=weight.
int run_split(const AdminEndpoint& endpoint, const std::string& model_id,
              const std::vector<std::string>& routes, bool force);
// Starts (or, with `off`, stops) shadowing `model_id` with `version`.
int run_shadow(const AdminEndpoint& endpoint, const std::string& model_id, long version,
               double rate, double tolerance, bool off);
// Loads `version` again from its files and self-tests it (a serving copy keeps serving until the
// new one passes).
int run_reload(const AdminEndpoint& endpoint, const std::string& model_id, long version,
               bool force);
int run_deploy(const AdminEndpoint& endpoint, const std::string& model_id);
int run_undeploy(const AdminEndpoint& endpoint, const std::string& model_id);

}  // namespace forklift
