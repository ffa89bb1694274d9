// Control-plane commands: `forklift status | promote | rollback | split | shadow | reload |
// deploy | undeploy | rollout ... | jobs ...`, each one call to a server's admin API.
//
// Exit status, for scripts: 0 done; 1 the server refused (its message is printed); 2 bad usage;
// 3 the server could not be reached; 4 no answer in time (the change may or may not have
// happened); 5 `rollout status --watch`: the rollout ended without promoting; `jobs run --wait`
// and `jobs show --watch`: the job ended without publishing a version.
#pragma once

#include <string>
#include <vector>

#include "cli/admin_client.h"
#include "cli/exit_codes.h"

namespace forklift {

// Sends one call; prints the server's error and returns the exit status when it did not
// succeed (0 when it did, `answer` then holding the server's answer).
int call_admin(const AdminEndpoint& endpoint, const std::string& method, const std::string& path,
               const std::string& body, AdminAnswer& answer);

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

// `forklift rollout ...` (rollout_commands.cc).
struct RolloutStartOptions {
  long version = 0;         // 0: the newest serving version newer than production
  std::string policy_file;  // a JSON rollout policy; empty: the version's model.yaml, else defaults
  std::vector<double> steps;  // overrides canary.steps
  double hold_seconds = -1;   // overrides canary.hold_seconds (< 0: not given)
  bool no_shadow = false;     // skip the shadow stage
  bool force = false;
};
int run_rollout_start(const AdminEndpoint& endpoint, const std::string& model_id,
                      const RolloutStartOptions& options);
// Prints the rollout's phase, stage and timeline; with `watch`, follows it until it ends and
// exits 5 unless it was promoted.
int run_rollout_status(const AdminEndpoint& endpoint, const std::string& model_id, bool watch);
// `step`: pause, resume or abort.
int run_rollout_step(const AdminEndpoint& endpoint, const std::string& model_id,
                     const std::string& step, const std::string& reason);

// `forklift jobs ...` (job_commands.cc): training jobs the server runs.
int run_jobs_list(const AdminEndpoint& endpoint);
// With `watch`, follows the job until it ends; exits 5 unless it published a version.
int run_jobs_show(const AdminEndpoint& endpoint, const std::string& id, bool watch);
int run_jobs_logs(const AdminEndpoint& endpoint, const std::string& id);
int run_jobs_cancel(const AdminEndpoint& endpoint, const std::string& id);
// Queues a job (with `snapshot`, of an online model's state); with `wait`, follows it and exits
// 5 unless it published a version.
int run_jobs_run(const AdminEndpoint& endpoint, const std::string& model_id, long parent, bool wait,
                 bool snapshot);

}  // namespace forklift
