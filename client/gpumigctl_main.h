// gpumigctl as a library: RunGpumigctl is the whole CLI (argument parsing,
// help, dispatch to a command, exit code) with its output streams given, so
// tests can drive it without a process and, for usage errors and help,
// without a daemon. client/main.cc is the binary's wiring around it.
//
// Output: human-readable text and aligned tables by default; with --json,
// one JSON object per result on `out` (stable keys; `fence watch` prints one
// per event). Errors go to `err` as `gpumigctl: <command>: <CODE>: <message>`
// and the exit code tells the error kind (cli::ExitCodeHelp()). `read` to
// stdout writes the object's bytes to file descriptor 1, not to `out`.
#ifndef GPUMIG_CLIENT_GPUMIGCTL_MAIN_H_
#define GPUMIG_CLIENT_GPUMIGCTL_MAIN_H_

#include <ostream>
#include <string>
#include <vector>

namespace gpumig::cli {

// Runs gpumigctl with `args` (argv without the program name); returns the
// exit code: 0 ok, 2 usage error (message and usage on `err`), otherwise
// the code for the command's error (cli_args.h, ExitCodeForStatus). Not
// thread-safe with respect to process state: `fence watch` blocks SIGINT and
// SIGTERM while it runs.
int RunGpumigctl(const std::vector<std::string>& args, std::ostream& out,
                 std::ostream& err);

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_GPUMIGCTL_MAIN_H_
