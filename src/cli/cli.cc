// The forklift command line: serve, selftest, and the control-plane commands.
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli/admin_commands.h"
#include "cli/new_command.h"
#include "cli/selftest_command.h"
#include "cli/serve_command.h"
#include "forklift/server.h"
#include "observability/log.h"
#include "runtimes/builtin.h"

namespace forklift {

int run_cli(int argc, char** argv) {
  // Worker processes are this same binary; they are not a command anyone types.
  if (argc >= 2 && std::string_view(argv[1]) == "runtime-worker") {
    return run_runtime_worker(argc - 2, argv + 2);
  }
  CLI::App app{"forklift: a fast model-serving platform"};
  app.require_subcommand(1);

  forklift::ServeOptions serve;
  auto* serve_cmd =
      app.add_subcommand("serve", "Serve every model in a model repository over HTTP");
  serve_cmd
      ->add_option("--model-repository", serve.model_repository,
                   "Directory holding <model id>/<version>/model.yaml")
      ->required()
      ->check(CLI::ExistingDirectory);
  serve_cmd->add_option("--port", serve.server.port, "Port for the data plane (0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--host", serve.server.host, "Address to listen on")->capture_default_str();
  serve_cmd->add_option("--threads", serve.server.threads, "Serving threads (0: one per core)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-body-bytes", serve.server.max_body_bytes,
                   "Largest request body accepted; larger ones get 413")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-header-bytes", serve.server.max_header_bytes,
                   "Largest request header section accepted; larger ones get 431")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-header-count", serve.server.max_header_count,
                   "Most header fields in one request; more get 431")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-connections", serve.server.max_connections,
                   "Connections open at once; beyond it a new one gets 503 and is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve_cmd
      ->add_option_function<long>(
          "--read-timeout",
          [&serve](long s) { serve.server.read_timeout = std::chrono::seconds(s); },
          "Seconds a client has to send one whole request, and to read the answer (default 30)")
      ->check(CLI::Range(1L, 3600L));
  serve_cmd
      ->add_option_function<long>(
          "--idle-timeout",
          [&serve](long s) { serve.server.idle_timeout = std::chrono::seconds(s); },
          "Seconds a kept-alive connection may wait for its next request (default 60)")
      ->check(CLI::Range(1L, 3600L));
  serve_cmd
      ->add_option("--poll-seconds", serve.poll_seconds,
                   "Rescan the repository for new versions this often (0: never)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--admin-port", serve.admin.port, "Port for the admin API (0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--admin-host", serve.admin.host, "Address for the admin API")
      ->capture_default_str();
  serve_cmd
      ->add_option("--tls-cert", serve.server.tls_cert_file,
                   "PEM certificate chain: the data plane speaks only HTTPS (with --tls-key)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--tls-key", serve.server.tls_key_file, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--admin-tls-cert", serve.admin.tls_cert_file,
                   "PEM certificate chain: the admin API speaks only HTTPS (with --admin-tls-key)")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--admin-tls-key", serve.admin.tls_key_file,
                   "PEM private key for --admin-tls-cert")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--admin-host-name", serve.admin_host_names,
                        "A host name (besides IP addresses and localhost) under which the admin "
                        "API answers reads without a token; repeatable");
  serve_cmd
      ->add_option("--admin-token-file", serve.admin_token_file,
                   "File holding the admin bearer token (else $FORKLIFT_ADMIN_TOKEN)")
      ->check(CLI::ExistingFile);
  serve_cmd
      ->add_option("--shadow-queue", serve.shadow_queue,
                   "Shadow copies that may wait; beyond that they are dropped and counted")
      ->capture_default_str();
  serve_cmd->add_option("--events-dir", serve.events_dir,
                        "Write prediction events (JSON lines) to rotating files here");
  serve_cmd->add_option("--events-sample", serve.events_sample, "Fraction of requests logged")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  serve_cmd
      ->add_option("--events-max-file-mb", serve.events_max_file_mb, "Rotate files at this size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve_cmd->add_option("--events-max-files", serve.events_max_files, "Event files kept")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve_cmd->add_option("--state-file", serve.state_file,
                        "Where deployments are kept (default <repository>/.forklift-state.json; "
                        "'none' keeps them in memory only)");
  serve_cmd->add_option("--ui-dir", serve.ui_dir,
                        "The web UI's files, served at /ui/ on the admin listener (default: the "
                        "installed ones; 'none' turns the UI off)");
  serve_cmd
      ->add_option("--state-postgres", serve.state_postgres,
                   "PostgreSQL connection string (or URI): deployments shared by every replica "
                   "using it; the state file keeps this replica's last known copy")
      ->envname("FORKLIFT_STATE_POSTGRES");
  serve_cmd
      ->add_option("--events-postgres", serve.events_postgres,
                   "PostgreSQL connection string (or URI): also write events to the "
                   "forklift_events table, in batches")
      ->envname("FORKLIFT_EVENTS_POSTGRES");
  serve_cmd
      ->add_option("--events-postgres-max-pending", serve.events_postgres_max_pending,
                   "Events held in memory while PostgreSQL is unreachable; beyond that the "
                   "oldest are dropped and counted")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve_cmd
      ->add_option("--log-requests", serve.log_requests,
                   "Fraction of requests to log as JSON lines (0: none, 1: every one)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  serve_cmd
      ->add_option("--drain-seconds", serve.drain_seconds,
                   "On SIGTERM, how long in-flight requests may take to finish")
      ->capture_default_str();

  std::string repository;
  std::string model_id;
  auto* selftest_cmd =
      app.add_subcommand("selftest", "Run every version's self-tests without a server (for CI)");
  selftest_cmd->add_option("repository", repository, "Model repository directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  selftest_cmd->add_option("--model", model_id, "Only this model id");

  forklift::NewOptions new_options;
  auto* new_cmd = app.add_subcommand(
      "new", "Write a new model-service repository (asks a few questions; flags answer them)");
  new_cmd->add_option("directory", new_options.directory, "Where to write it")
      ->capture_default_str();
  const auto answer = [&](const char* flag, std::optional<std::string>& into, const char* what) {
    new_cmd->add_option_function<std::string>(
        flag, [&into](const std::string& v) { into = v; }, what);
  };
  answer("--name", new_options.answers.name, "Service name (a DNS-1123 label)");
  answer("--team", new_options.answers.team, "Owning GitHub team, e.g. @my-org/pricing");
  answer("--oncall", new_options.answers.oncall, "On-call contact");
  answer("--runtime", new_options.answers.runtime, "Runtime of the first model: cpp or python");
  answer("--port", new_options.answers.port, "Port the service listens on");
  answer("--registry", new_options.answers.registry, "Container registry");
  answer("--region", new_options.answers.region, "Cloud region");
  new_cmd->add_flag("--yes,-y", new_options.yes, "Take the defaults for every unanswered question");
  new_cmd->add_flag("--force", new_options.force, "Write into a non-empty directory");
  new_cmd->add_option("--templates", new_options.templates,
                      "Service templates directory (default: the installed ones)");

  app.add_subcommand("version", "Print the version")->callback([] { std::puts("forklift 0.1.0"); });

  // Control-plane commands: one call each to a server's admin API.
  forklift::AdminEndpoint endpoint;
  if (const char* url = std::getenv("FORKLIFT_ADMIN_URL")) endpoint.url = url;
  if (const char* token = std::getenv("FORKLIFT_ADMIN_TOKEN")) endpoint.token = token;
  if (const char* user = std::getenv("USER")) endpoint.actor = user;
  if (const char* ca = std::getenv("FORKLIFT_CA_FILE")) endpoint.ca_file = ca;
  long admin_timeout = 60;
  if (const char* t = std::getenv("FORKLIFT_ADMIN_TIMEOUT")) {
    char* end = nullptr;
    const long seconds = std::strtol(t, &end, 10);
    if (end != t && *end == '\0' && seconds > 0) admin_timeout = seconds;
  }
  std::string token_file;
  std::string target_model;
  long target_version = 0;
  std::vector<std::string> routes;
  bool force = false;
  const auto admin_command = [&](const char* name, const char* help) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("--server", endpoint.url,
                    "Admin API URL, http:// or https:// (else $FORKLIFT_ADMIN_URL)")
        ->capture_default_str();
    cmd->add_option("--token-file", token_file,
                    "File holding the admin token "
                    "(else $FORKLIFT_ADMIN_TOKEN)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--actor", endpoint.actor, "Name recorded in the audit log (default $USER)");
    cmd->add_option("--ca-file", endpoint.ca_file,
                    "PEM certificates trusted for an https:// server, besides the system's "
                    "(else $FORKLIFT_CA_FILE)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--timeout", admin_timeout,
                    "Seconds to wait for the answer, which may include loading and self-testing "
                    "a model (else $FORKLIFT_ADMIN_TIMEOUT)")
        ->check(CLI::Range(1, 86400))
        ->capture_default_str();
    return cmd;
  };
  auto* status_cmd = admin_command("status", "Show versions, self-tests and traffic");
  status_cmd->add_option("model", target_model, "Only this model id");
  auto* promote_cmd = admin_command("promote", "Send all traffic of a model to one version");
  promote_cmd->add_option("model", target_model)->required();
  promote_cmd->add_option("version", target_version)->required()->check(CLI::PositiveNumber);
  promote_cmd->add_flag("--force", force, "Promote even if the version's schema breaks callers");
  auto* rollback_cmd = admin_command("rollback", "Return a model to its previous deployment");
  rollback_cmd->add_option("model", target_model)->required();
  auto* split_cmd = admin_command("split", "Split a model's traffic: VERSION=WEIGHT ...");
  split_cmd->add_option("model", target_model)->required();
  split_cmd->add_option("routes", routes, "e.g. 1=90 2=10; none returns to the version policy");
  split_cmd->add_flag("--force", force, "Split even if a version's schema breaks callers");
  double shadow_rate = 1.0;
  double shadow_tolerance = 0.01;
  bool shadow_off = false;
  auto* shadow_cmd =
      admin_command("shadow", "Copy a model's traffic to a version, off the hot path");
  shadow_cmd->add_option("model", target_model)->required();
  shadow_cmd->add_option("version", target_version)->required()->check(CLI::PositiveNumber);
  shadow_cmd->add_option("--rate", shadow_rate, "Fraction of requests copied")
      ->capture_default_str()
      ->check(CLI::Range(0.000001, 1.0));
  shadow_cmd
      ->add_option("--tolerance", shadow_tolerance,
                   "Relative difference under which outputs count as agreeing")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  shadow_cmd->add_flag("--off", shadow_off, "Stop shadowing with this version");
  auto* deploy_cmd = admin_command("deploy", "Load a model id from the repository");
  deploy_cmd->add_option("model", target_model)->required();
  auto* undeploy_cmd = admin_command("undeploy", "Unload every version of a model id");
  undeploy_cmd->add_option("model", target_model)->required();

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) return forklift::run_serve(serve);
  if (new_cmd->parsed()) return forklift::run_new(new_options, std::cin, std::cout, std::cerr);
  if (selftest_cmd->parsed()) {
    forklift::log::set_min_level(forklift::log::Level::kWarn);
    return forklift::run_selftest(repository, model_id);
  }
  endpoint.timeout = std::chrono::seconds(admin_timeout);
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, endpoint.token);
    while (!endpoint.token.empty() &&
           std::isspace(static_cast<unsigned char>(endpoint.token.back()))) {
      endpoint.token.pop_back();
    }
  }
  if (status_cmd->parsed()) return forklift::run_status(endpoint, target_model);
  if (promote_cmd->parsed())
    return forklift::run_promote(endpoint, target_model, target_version, force);
  if (rollback_cmd->parsed()) return forklift::run_rollback(endpoint, target_model);
  if (split_cmd->parsed()) return forklift::run_split(endpoint, target_model, routes, force);
  if (shadow_cmd->parsed()) {
    return forklift::run_shadow(endpoint, target_model, target_version, shadow_rate,
                                shadow_tolerance, shadow_off);
  }
  if (deploy_cmd->parsed()) return forklift::run_deploy(endpoint, target_model);
  if (undeploy_cmd->parsed()) return forklift::run_undeploy(endpoint, target_model);
  return 0;
}

}  // namespace forklift
