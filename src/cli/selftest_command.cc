#include "cli/selftest_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "core/repository.h"
#include "core/version_loader.h"
#include "observability/log.h"
#include "runtimes/builtin.h"

namespace forklift {

int run_selftest(const std::string& repository, const std::string& model_id) {
  register_builtin_runtimes();
  std::vector<std::string> skipped;
  auto models = scan_repository(repository, &skipped);
  if (!models.ok()) {
    std::fprintf(stderr, "forklift selftest: %s\n", models.status().message().c_str());
    return kExitUsage;
  }
  for (const auto& s : skipped) std::printf("SKIP  %s\n", s.c_str());
  std::size_t versions = 0;
  std::size_t failed = 0;
  for (const auto& model : *models) {
    if (!model_id.empty() && model.model_id != model_id) continue;
    for (std::int64_t v : model.versions) {
      ++versions;
      LoadOutcome outcome = load_version(model.path / std::to_string(v), model.model_id, v);
      const std::string name = model.model_id + "/" + std::to_string(v);
      if (outcome.loaded) {
        // Which engine production will use, for a runtime with several (xgboost).
        const std::string& engine = outcome.loaded->engine.name;
        std::printf("PASS  %-24s %zu/%zu cases  %.3f s%s%s\n", name.c_str(),
                    outcome.selftest->passed, outcome.selftest->cases, outcome.load_seconds,
                    engine.empty() ? "" : "  engine: ", engine.c_str());
      } else {
        ++failed;
        std::printf("FAIL  %-24s %s\n", name.c_str(), outcome.status.message().c_str());
      }
    }
  }
  if (versions == 0) {
    std::fprintf(stderr, "forklift selftest: no model versions found in '%s'%s\n",
                 repository.c_str(),
                 model_id.empty() ? "" : (" for model '" + model_id + "'").c_str());
    return kExitUsage;
  }
  std::printf("\n%zu passed, %zu failed\n", versions - failed, failed);
  return failed == 0 ? 0 : kExitFailed;
}

}  // namespace forklift

namespace forklift {

Command add_selftest_command(CLI::App& app) {
  struct Options {
    std::string repository;
    std::string model_id;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("selftest", "Run every version's self-tests without a server (for CI)");
  cmd->add_option("repository", options->repository, "Model repository directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--model", options->model_id, "Only this model id");
  return {cmd, [options] {
            log::set_min_level(log::Level::kWarn);
            return run_selftest(options->repository, options->model_id);
          }};
}

}  // namespace forklift
