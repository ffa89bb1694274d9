// The whole forklift command line (serve, selftest, the control-plane commands) as a function,
// for a team's own service binary. Linking `forklift::main` gives a main() that calls it; call it
// yourself to do something first (the runtimes in your sources register before main runs).
#pragma once

namespace forklift {

// Parses argv as the `forklift` command does and runs the command. Returns the exit code.
int run_cli(int argc, char** argv);

}  // namespace forklift
