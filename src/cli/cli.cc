// The forklift command line: each command registers itself (commands.h); this file parses and
// dispatches, and maps command-line errors to the documented exit status.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "forklift/server.h"
#include "runtimes/builtin.h"

namespace forklift {

// Exit codes are documented in docs/reference/cli.md: kExitUsage (2) is bad usage (an unknown
// flag, a missing argument, a path that does not exist). CLI11's own codes (105, 106, 109, ...)
// are not part of the contract.

int run_cli(int argc, char** argv) {
  // Worker processes are this same binary; they are not a command anyone types.
  if (argc >= 2 && std::string_view(argv[1]) == "runtime-worker") {
    return run_runtime_worker(argc - 2, argv + 2);
  }
  CLI::App app{"forklift: a fast model-serving platform"};
  app.require_subcommand(1);
  std::vector<Command> commands = {add_serve_command(app), add_selftest_command(app),
                                   add_new_command(app),   add_profile_command(app),
                                   add_train_command(app), add_push_command(app)};
  for (Command& c : add_admin_commands(app)) commands.push_back(std::move(c));
  CLI::App* version = app.add_subcommand("version", "Print the version");
  commands.push_back({version, [] {
                        std::puts("forklift " FORKLIFT_VERSION);
                        return 0;
                      }});
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the help, or the error and a hint
    return code == 0 ? 0 : kExitUsage;
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return kExitUsage;
}

}  // namespace forklift
