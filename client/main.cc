// gpumigctl: the command-line client of gpumigd. One subcommand per RPC;
// `gpumigctl help` lists them, `gpumigctl SUBCMD --help` describes one. The
// CLI is client/gpumigctl_main.h; this is its process wiring.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "client/gpumigctl_main.h"

int main(int argc, char** argv) {
  // A reader that goes away (`gpumigctl read H | head`) is an EPIPE error on
  // write, not a silent death by SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  return gpumig::cli::RunGpumigctl(args, std::cout, std::cerr);
}
