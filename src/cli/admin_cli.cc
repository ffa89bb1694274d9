// The control-plane commands' flags: one call each to a server's admin API (admin_commands.h).
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "cli/admin_commands.h"
#include "cli/commands.h"

namespace forklift {
namespace {

// What every control-plane command shares: where the server is, the token, who acts.
struct AdminFlags {
  AdminEndpoint endpoint;
  std::string token_file;
  long timeout_seconds = 60;
  // The arguments of the command given (only one runs).
  std::string model;
  long version = 0;
  std::vector<std::string> routes;
  bool force = false;
  double shadow_rate = 1.0;
  double shadow_tolerance = 0.01;
  bool shadow_off = false;
  RolloutStartOptions rollout;
  bool watch = false;
  std::string reason;
  std::string job_id;
  bool snapshot = false;

  // The endpoint with the token file read and the timeout applied.
  AdminEndpoint resolved() const {
    AdminEndpoint e = endpoint;
    e.timeout = std::chrono::seconds(timeout_seconds);
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      std::getline(in, e.token);
      while (!e.token.empty() && std::isspace(static_cast<unsigned char>(e.token.back()))) {
        e.token.pop_back();
      }
    }
    return e;
  }
};

// Who is acting, for the audit log: $USER, else the account's name, at this host.
std::string default_actor() {
  std::string user;
  if (const char* u = std::getenv("USER"); u != nullptr && *u != '\0') {
    user = u;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) {
    user = pw->pw_name;
  } else {
    user = "uid " + std::to_string(::getuid());
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') user += std::string("@") + host;
  return user.substr(0, 64);
}

std::shared_ptr<AdminFlags> flags_from_environment() {
  auto flags = std::make_shared<AdminFlags>();
  AdminEndpoint& e = flags->endpoint;
  if (const char* url = std::getenv("FORKLIFT_ADMIN_URL")) e.url = url;
  if (const char* token = std::getenv("FORKLIFT_ADMIN_TOKEN")) e.token = token;
  if (const char* ca = std::getenv("FORKLIFT_CA_FILE")) e.ca_file = ca;
  e.actor = default_actor();
  if (const char* t = std::getenv("FORKLIFT_ADMIN_TIMEOUT")) {
    char* end = nullptr;
    const long seconds = std::strtol(t, &end, 10);
    if (end != t && *end == '\0' && seconds > 0) flags->timeout_seconds = seconds;
  }
  return flags;
}

CLI::App* add_admin_command(CLI::App& app, AdminFlags& flags, const char* name, const char* help) {
  CLI::App* cmd = app.add_subcommand(name, help);
  cmd->add_option("--server", flags.endpoint.url,
                  "Admin API URL, http:// or https:// (else $FORKLIFT_ADMIN_URL)")
      ->capture_default_str();
  cmd->add_option("--token-file", flags.token_file,
                  "File holding the admin token (else $FORKLIFT_ADMIN_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--actor", flags.endpoint.actor,
                  "Name recorded in the audit log (default $USER@host)");
  cmd->add_option("--ca-file", flags.endpoint.ca_file,
                  "PEM certificates trusted for an https:// server, besides the system's "
                  "(else $FORKLIFT_CA_FILE)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--timeout", flags.timeout_seconds,
                  "Seconds to wait for the answer, which may include loading and self-testing "
                  "a model (else $FORKLIFT_ADMIN_TIMEOUT)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  return cmd;
}

void add_model_and_version(CLI::App* cmd, AdminFlags& flags) {
  cmd->add_option("model", flags.model)->required();
  cmd->add_option("version", flags.version)->required()->check(CLI::PositiveNumber);
}

// `forklift rollout start | status | pause | resume | abort`.
void add_rollout_commands(CLI::App& app, const std::shared_ptr<AdminFlags>& f,
                          std::vector<Command>& out) {
  CLI::App* rollout = app.add_subcommand("rollout",
                                         "Roll a new version out by itself: shadow, canary steps, "
                                         "promote, or roll back when a guardrail trips");
  rollout->require_subcommand(1);
  const auto add = [&](const char* name, const char* help, std::function<int(AdminFlags&)> run) {
    CLI::App* cmd = add_admin_command(*rollout, *f, name, help);
    cmd->add_option("model", f->model)->required();
    out.push_back({cmd, [f, run = std::move(run)] { return run(*f); }});
    return cmd;
  };
  CLI::App* start =
      add("start", "Start a rollout of a version (default: the newest one)",
          [](AdminFlags& a) { return run_rollout_start(a.resolved(), a.model, a.rollout); });
  start->add_option("version", f->rollout.version, "The version to roll out")
      ->check(CLI::PositiveNumber);
  start
      ->add_option("--policy", f->rollout.policy_file,
                   "Rollout policy fields (JSON) over the version's own (its model.yaml, else "
                   "the defaults)")
      ->check(CLI::ExistingFile);
  start->add_option("--steps", f->rollout.steps, "Canary steps in percent, e.g. 1,10,50,100")
      ->delimiter(',');
  start->add_option("--hold-seconds", f->rollout.hold_seconds, "Hold time of each canary step")
      ->check(CLI::NonNegativeNumber);
  start->add_flag("--no-shadow", f->rollout.no_shadow, "Skip the shadow stage");
  start->add_flag("--force", f->rollout.force, "Start even if the version's schema breaks callers");
  CLI::App* status = add("status", "Show a model's rollout and its timeline", [](AdminFlags& a) {
    return run_rollout_status(a.resolved(), a.model, a.watch);
  });
  status->add_flag("--watch", f->watch,
                   "Follow it until it ends; exit 0 if promoted, 5 if rolled back or aborted");
  for (const char* step : {"pause", "resume", "abort"}) {
    const std::string name = step;
    CLI::App* cmd = add(
        step,
        name == "pause"    ? "Stop advancing (guardrails still roll back)"
        : name == "resume" ? "Advance again (the stage's hold time restarts)"
                           : "Stop the rollout and return traffic to production",
        [name](AdminFlags& a) { return run_rollout_step(a.resolved(), a.model, name, a.reason); });
    cmd->add_option("--reason", f->reason, "Why, for the timeline and the audit log");
  }
}

// `forklift jobs list | show | logs | cancel | run`.
void add_job_commands(CLI::App& app, const std::shared_ptr<AdminFlags>& f,
                      std::vector<Command>& out) {
  CLI::App* jobs = app.add_subcommand("jobs", "Training jobs the server runs (train.yaml)");
  jobs->require_subcommand(1);
  const auto add = [&](const char* name, const char* help, std::function<int(AdminFlags&)> run) {
    CLI::App* cmd = add_admin_command(*jobs, *f, name, help);
    out.push_back({cmd, [f, run = std::move(run)] { return run(*f); }});
    return cmd;
  };
  add("list", "Every job the server keeps, newest first",
      [](AdminFlags& a) { return run_jobs_list(a.resolved()); });
  CLI::App* show =
      add("show", "One job as JSON, with its held-out metric per round",
          [](AdminFlags& a) { return run_jobs_show(a.resolved(), a.job_id, a.watch); });
  show->add_option("job", f->job_id)->required();
  show->add_flag("--watch", f->watch,
                 "Follow it until it ends; exit 0 if it published a version, 5 otherwise");
  CLI::App* logs = add("logs", "A job's log lines",
                       [](AdminFlags& a) { return run_jobs_logs(a.resolved(), a.job_id); });
  logs->add_option("job", f->job_id)->required();
  CLI::App* cancel = add("cancel", "Stop a queued or running job (no version is published)",
                         [](AdminFlags& a) { return run_jobs_cancel(a.resolved(), a.job_id); });
  cancel->add_option("job", f->job_id)->required();
  CLI::App* run = add("run", "Queue a training job for a model", [](AdminFlags& a) {
    return run_jobs_run(a.resolved(), a.model, a.version, a.watch, a.snapshot);
  });
  run->add_option("model", f->model)->required();
  run->add_option("--parent", f->version, "The version to start from (default: the newest)")
      ->check(CLI::PositiveNumber);
  run->add_flag("--snapshot", f->snapshot,
                "Publish an online model's state as a new version instead of training one");
  run->add_flag("--wait", f->watch,
                "Follow the job until it ends; exit 0 if it published a version, 5 otherwise");
}

}  // namespace

std::vector<Command> add_admin_commands(CLI::App& app) {
  const std::shared_ptr<AdminFlags> f = flags_from_environment();
  std::vector<Command> out;
  const auto add = [&](const char* name, const char* help, std::function<int(AdminFlags&)> run) {
    CLI::App* cmd = add_admin_command(app, *f, name, help);
    out.push_back({cmd, [f, run = std::move(run)] { return run(*f); }});
    return cmd;
  };
  CLI::App* status = add("status", "Show versions, self-tests and traffic",
                         [](AdminFlags& a) { return run_status(a.resolved(), a.model); });
  status->add_option("model", f->model, "Only this model id");
  CLI::App* promote =
      add("promote", "Send all traffic of a model to one version",
          [](AdminFlags& a) { return run_promote(a.resolved(), a.model, a.version, a.force); });
  add_model_and_version(promote, *f);
  promote->add_flag("--force", f->force, "Promote even if the version's schema breaks callers");
  CLI::App* rollback = add("rollback", "Return a model to its previous deployment",
                           [](AdminFlags& a) { return run_rollback(a.resolved(), a.model); });
  rollback->add_option("model", f->model)->required();
  CLI::App* split =
      add("split", "Split a model's traffic: VERSION=WEIGHT ... (shadows are kept)",
          [](AdminFlags& a) { return run_split(a.resolved(), a.model, a.routes, a.force); });
  split->add_option("model", f->model)->required();
  split->add_option("routes", f->routes, "e.g. 1=90 2=10; none returns to the version policy");
  split->add_flag("--force", f->force, "Split even if a version's schema breaks callers");
  CLI::App* shadow =
      add("shadow", "Copy a model's traffic to a version, off the hot path", [](AdminFlags& a) {
        return run_shadow(a.resolved(), a.model, a.version, a.shadow_rate, a.shadow_tolerance,
                          a.shadow_off);
      });
  add_model_and_version(shadow, *f);
  shadow->add_option("--rate", f->shadow_rate, "Fraction of requests copied")
      ->capture_default_str()
      ->check(CLI::Range(0.000001, 1.0));
  shadow
      ->add_option("--tolerance", f->shadow_tolerance,
                   "Relative difference under which outputs count as agreeing")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  shadow->add_flag("--off", f->shadow_off, "Stop shadowing with this version");
  CLI::App* reload =
      add("reload", "Load a version again from its files and self-test it",
          [](AdminFlags& a) { return run_reload(a.resolved(), a.model, a.version, a.force); });
  add_model_and_version(reload, *f);
  reload->add_flag("--force", f->force, "Reload even if the new copy's schema breaks callers");
  CLI::App* deploy = add("deploy", "Load a model id from the repository",
                         [](AdminFlags& a) { return run_deploy(a.resolved(), a.model); });
  deploy->add_option("model", f->model)->required();
  CLI::App* undeploy = add("undeploy", "Unload every version of a model id",
                           [](AdminFlags& a) { return run_undeploy(a.resolved(), a.model); });
  undeploy->add_option("model", f->model)->required();
  add_rollout_commands(app, f, out);
  add_job_commands(app, f, out);
  return out;
}

}  // namespace forklift
