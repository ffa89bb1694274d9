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
  return out;
}

}  // namespace forklift
