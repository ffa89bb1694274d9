// The forklift command: serve, selftest.
#include <CLI/CLI.hpp>

#include "cli/selftest_command.h"
#include "cli/serve_command.h"
#include "observability/log.h"

int main(int argc, char** argv) {
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
      ->add_option("--poll-seconds", serve.poll_seconds,
                   "Rescan the repository for new versions this often (0: never)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--admin-port", serve.admin.port, "Port for the admin API (0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--admin-host", serve.admin.host, "Address for the admin API")
      ->capture_default_str();
  serve_cmd
      ->add_option("--admin-token-file", serve.admin_token_file,
                   "File holding the admin bearer token (else $FORKLIFT_ADMIN_TOKEN)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--state-file", serve.state_file,
                        "Where deployments are kept (default <repository>/.forklift-state.json; "
                        "'none' keeps them in memory only)");
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

  app.add_subcommand("version", "Print the version")->callback([] { std::puts("forklift 0.1.0"); });

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) return forklift::run_serve(serve);
  if (selftest_cmd->parsed()) {
    forklift::log::set_min_level(forklift::log::Level::kWarn);
    return forklift::run_selftest(repository, model_id);
  }
  return 0;
}
