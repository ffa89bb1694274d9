// The forklift command. A team's service binary gets this same main() from forklift::main, with
// its own runtimes linked in beside it.
#include "forklift/server.h"

int main(int argc, char** argv) {
  return forklift::run_cli(argc, argv);
}
