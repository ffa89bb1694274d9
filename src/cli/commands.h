// How the forklift command is put together: each command registers its flags on the app and
// returns what runs it once the command line is parsed (cli.cc dispatches).
#pragma once

#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace forklift {

struct Command {
  CLI::App* app = nullptr;   // the subcommand: run() is called when it was parsed
  std::function<int()> run;  // returns the exit status
};

Command add_serve_command(CLI::App& app);     // serve_flags.cc
Command add_selftest_command(CLI::App& app);  // selftest_command.cc
Command add_new_command(CLI::App& app);       // new_command.cc
Command add_profile_command(CLI::App& app);   // profile_command.cc
Command add_train_command(CLI::App& app);     // train_command.cc
Command add_push_command(CLI::App& app);      // push_command.cc
// status, promote, rollback, split, shadow, reload, deploy, undeploy (admin_cli.cc)
std::vector<Command> add_admin_commands(CLI::App& app);

}  // namespace forklift
