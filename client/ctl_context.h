// gpumigctl's command model: a Command (name, synopsis, flags, runner) and
// the per-invocation Ctx a runner gets (parsed arguments, connection and
// call options, the output streams), plus the helpers every runner shares:
// printing a result, reporting an error with its exit code, the fence exit
// codes. Not thread-safe: one Ctx per invocation, used by one thread.
#ifndef GPUMIG_CLIENT_CTL_CONTEXT_H_
#define GPUMIG_CLIENT_CTL_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {

struct Ctx;

// One subcommand of gpumigctl.
struct Command {
  // "create", "exec fill", ...
  std::string name;
  // Arguments after the name, for the usage line, e.g. "SIZE [flags]".
  std::string synopsis;
  // One line for the command list.
  std::string summary;
  // Longer help (may be empty); printed under the usage line.
  std::string details;
  std::vector<FlagSpec> flags;
  size_t min_args = 0;
  size_t max_args = 0;
  std::function<int(Ctx&)> run;
};

// `usage: gpumigctl NAME SYNOPSIS`, the summary, details and flags.
std::string CommandUsage(const Command& c);

// Per-invocation state.
struct Ctx {
  const Command* command = nullptr;
  ParsedArgs global;  // global flags given before the command
  ParsedArgs args;    // the command's own flags, positionals, later globals
  bool json = false;
  client::ConnectOptions connect;
  client::CallOptions call;
  bool timeout_given = false;
  std::unique_ptr<client::Client> client_storage;
  // Where results and errors go (stdout and stderr in the binary).
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;

  const std::vector<std::string>& pos() const { return args.positional(); }

  // A global flag's value: after the command wins over before it.
  std::optional<std::string> Global(absl::string_view name) const {
    std::optional<std::string> v = args.Get(name);
    return v.has_value() ? v : global.Get(name);
  }

  // Writes `text` to out and flushes (so a pipe sees each result at once).
  // Returns false once out has failed (closed pipe, full disk); the main
  // function reports that at the end.
  bool Print(absl::string_view text) const;
  // w's text and a newline.
  void PrintJson(const JsonWriter& w) const;
  // Whether out still takes output.
  bool OutputOk() const { return static_cast<bool>(*out); }

  // Prints `gpumigctl: <command>: <CODE>: <message>` (plus a hint for
  // UNAVAILABLE) and returns the exit code for the status.
  int Error(const absl::Status& status) const;

  // A usage error: the message and the command's usage on err; exit 2.
  int Usage(absl::string_view message) const;

  // The connected client (created on first use).
  absl::StatusOr<client::Client*> Client();

  // CallOptions with a longer default deadline (unless --timeout was given).
  client::CallOptions CallWithDefault(absl::Duration default_timeout) const {
    client::CallOptions c = call;
    if (!timeout_given) c.timeout = default_timeout;
    return c;
  }
};

// Sets `var` (a client::Client*) to ctx's client, or returns ctx.Error(...)
// from the enclosing runner.
#define GPUMIGCTL_CLIENT_OR_RETURN(ctx, var)                           \
  absl::StatusOr<::gpumig::client::Client*> var##_or = (ctx).Client(); \
  if (!var##_or.ok()) return (ctx).Error(var##_or.status());           \
  ::gpumig::client::Client* var = *var##_or

// A command's result: one JSON value with --json, else `human()`'s text.
// Returns kExitOk.
int PrintResult(const Ctx& ctx, absl::FunctionRef<void(JsonWriter&)> json,
                absl::FunctionRef<std::string()> human);

// Parses the value flag `name` with ParseSize (absent: `fallback`).
absl::StatusOr<uint64_t> SizeFlag(const Ctx& ctx, absl::string_view name,
                                  uint64_t fallback);

// A fence id argument; INVALID_ARGUMENT "bad fence id: ..." otherwise.
absl::StatusOr<uint64_t> FenceIdArg(absl::string_view text);

// Exit code for a fence a command waited for: 0 for BLIT_OK and fallbacks,
// 7 for UNKNOWN_STATE, 12 for FAILED; prints a line to err for the last
// two.
int FenceExit(const Ctx& ctx, const client::FenceStatus& f);

// Prints a submission (fence id, and the fence if the call waited):
// `extra_json` adds the command's own fields before them; `human_prefix`
// heads the line of a submission not waited for.
int PrintSubmit(const Ctx& ctx, const client::SubmitResult& r,
                const std::function<void(JsonWriter&)>& extra_json,
                absl::string_view human_prefix);

// --wait of the submitting commands.
extern const FlagSpec kWaitFlag;

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CTL_CONTEXT_H_
