// gpumigctl's dispatch: global flags, the command words, the command's
// flags and arguments, then the command's runner (see gpumigctl_main.h).
#include "client/gpumigctl_main.h"

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_commands.h"
#include "client/ctl_context.h"

namespace gpumig::cli {
namespace {

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"socket", "PATH",
       "daemon unix socket (default: $GPUMIG_SOCKET or "
       "/run/gpumig/gpumig.sock)"},
      {"target", "HOST:PORT", "connect over TCP with TLS instead"},
      {"tls-ca", "FILE", "TLS root CA (PEM; default: system roots)"},
      {"tls-cert", "FILE", "TLS client certificate (PEM)"},
      {"tls-key", "FILE", "TLS client key (PEM)"},
      {"tls-server-name", "NAME", "expect this name in the server certificate"},
      {"json", "", "machine output: one JSON object per result"},
      {"timeout", "DUR", "RPC deadline (default 30s; e.g. 500ms, 2m, inf)"},
      {"no-shm", "",
       "never use shared buffers: write/read of >= 256 KiB on a local "
       "socket otherwise move bytes through a registered memfd"},
      {"help", "", "show help", 'h'},
  };
  return *flags;
}

// Every command, in the order `gpumigctl help` lists them.
const std::vector<Command>& Commands() {
  static const auto* commands = [] {
    auto* all = new std::vector<Command>();
    for (std::vector<Command> (*group)() :
         {ObjectCommands, FenceCommands, RegionCommands, FaultCommands,
          DaemonCommands}) {
      for (Command& c : group()) all->push_back(std::move(c));
    }
    return all;
  }();
  return *commands;
}

// Writes to out and flushes; false once out has failed.
bool Print(std::ostream& out, absl::string_view text) {
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Command groups: "exec fill" belongs to "exec".
bool IsGroup(absl::string_view word) {
  return word == "exec" || word == "fence" || word == "fault";
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string GroupUsage(absl::string_view group) {
  std::string out = absl::StrCat("usage: gpumigctl ", group,
                                 " SUBCOMMAND ...\n\nSubcommands:\n");
  for (const Command& c : Commands()) {
    if (absl::StartsWith(c.name, absl::StrCat(group, " "))) {
      absl::StrAppend(&out, "  gpumigctl ", c.name, " ", c.synopsis, "\n      ",
                      c.summary, "\n");
    }
  }
  return out;
}

std::string MainUsage() {
  std::string out =
      "usage: gpumigctl [global flags] COMMAND [args] [flags]\n\n"
      "Command-line client of gpumigd, the GPU memory migration daemon.\n\n"
      "Commands:\n";
  for (const Command& c : Commands()) {
    absl::StrAppend(&out, "  ", c.name,
                    c.synopsis.empty() ? "" : absl::StrCat(" ", c.synopsis),
                    "\n      ", c.summary, "\n");
  }
  absl::StrAppend(&out, "  help [COMMAND]\n      show help\n");
  absl::StrAppend(&out, "\nGlobal flags (before or after the command):\n",
                  FormatFlagHelp(GlobalFlags()));
  absl::StrAppend(
      &out,
      "\nSizes, offsets and lengths take binary suffixes: 4096, 4K, 1M, "
      "64MiB, 0x1000.\nDurations: 10s, 500ms, 2m, or plain seconds.\n"
      "With --json every command prints one JSON object per result (fence "
      "watch: one per event).\nErrors go to stderr as "
      "`gpumigctl: <command>: <CODE>: <message>`.\n\n",
      ExitCodeHelp());
  return out;
}

int MainUsageError(std::ostream& err, absl::string_view message) {
  err << "gpumigctl: " << message << "\n\n" << MainUsage();
  return kExitUsage;
}

bool IsGlobalValueFlag(absl::string_view arg) {
  if (!absl::StartsWith(arg, "--") || arg.find('=') != absl::string_view::npos)
    return false;
  for (const FlagSpec& f : GlobalFlags()) {
    if (arg.substr(2) == f.name) return f.takes_value();
  }
  return false;
}

}  // namespace

int RunGpumigctl(const std::vector<std::string>& argv, std::ostream& out,
                 std::ostream& err) {
  // 1. Global flags before the command.
  size_t i = 0;
  std::vector<std::string> prefix;
  while (i < argv.size() && absl::StartsWith(argv[i], "-") && argv[i] != "-") {
    prefix.push_back(argv[i]);
    if (IsGlobalValueFlag(argv[i]) && i + 1 < argv.size()) {
      prefix.push_back(argv[++i]);
    }
    ++i;
  }
  absl::StatusOr<ParsedArgs> global = ParseArgs(prefix, GlobalFlags());
  if (!global.ok()) return MainUsageError(err, global.status().message());
  if (i >= argv.size()) {
    if (global->Has("help")) {
      Print(out, MainUsage());
      return kExitOk;
    }
    return MainUsageError(err, "no command given");
  }

  // 2. The command (one or two words).
  std::string name = argv[i++];
  if (name == "help") {
    std::vector<std::string> words(argv.begin() + i, argv.end());
    if (words.empty()) {
      Print(out, MainUsage());
      return kExitOk;
    }
    std::string wanted = absl::StrJoin(words, " ");
    if (const Command* c = FindCommand(wanted)) {
      Print(out, CommandUsage(*c));
      return kExitOk;
    }
    if (words.size() == 1 && IsGroup(wanted)) {
      Print(out, GroupUsage(wanted));
      return kExitOk;
    }
    return MainUsageError(err, absl::StrCat("unknown command '", wanted, "'"));
  }
  if (IsGroup(name)) {
    if (i >= argv.size() || argv[i] == "--help" || argv[i] == "-h") {
      const bool asked = i < argv.size();
      std::string usage = GroupUsage(name);
      if (asked) {
        Print(out, usage);
        return kExitOk;
      }
      err << "gpumigctl: " << name << ": missing subcommand\n\n" << usage;
      return kExitUsage;
    }
    std::string full = absl::StrCat(name, " ", argv[i]);
    if (FindCommand(full) == nullptr) {
      err << "gpumigctl: unknown command '" << full << "'\n\n"
          << GroupUsage(name);
      return kExitUsage;
    }
    name = full;
    ++i;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return MainUsageError(err, absl::StrCat("unknown command '", name, "'"));
  }

  // 3. The command's flags, positionals, and global flags after the command
  // (a command flag of the same name, like fence wait --timeout, wins).
  std::vector<FlagSpec> specs = command->flags;
  for (const FlagSpec& g : GlobalFlags()) {
    bool shadowed = false;
    for (const FlagSpec& f : command->flags) shadowed |= f.name == g.name;
    if (!shadowed) specs.push_back(g);
  }
  Ctx ctx;
  ctx.command = command;
  ctx.out = &out;
  ctx.err = &err;
  ctx.global = *std::move(global);
  absl::StatusOr<ParsedArgs> args =
      ParseArgs(std::vector<std::string>(argv.begin() + i, argv.end()), specs);
  if (!args.ok()) return ctx.Usage(args.status().message());
  ctx.args = *std::move(args);
  if (ctx.args.Has("help") || ctx.global.Has("help")) {
    Print(out, CommandUsage(*command));
    return kExitOk;
  }
  const size_t n = ctx.pos().size();
  if (n < command->min_args) {
    return ctx.Usage(
        absl::StrCat("missing argument (expected ", command->synopsis, ")"));
  }
  if (n > command->max_args) {
    return ctx.Usage(absl::StrCat("unexpected argument '",
                                  ctx.pos()[command->max_args], "'"));
  }

  // 4. Connection and call options.
  ctx.json = ctx.args.Has("json") || ctx.global.Has("json");
  ctx.connect.unix_socket = ctx.Global("socket").value_or("");
  ctx.connect.tcp_target = ctx.Global("target").value_or("");
  ctx.connect.use_shared_buffers =
      !(ctx.args.Has("no-shm") || ctx.global.Has("no-shm"));
  ctx.connect.tls_root_ca_file = ctx.Global("tls-ca").value_or("");
  ctx.connect.tls_cert_file = ctx.Global("tls-cert").value_or("");
  ctx.connect.tls_key_file = ctx.Global("tls-key").value_or("");
  ctx.connect.tls_server_name_override =
      ctx.Global("tls-server-name").value_or("");
  // fence wait/watch own --timeout after the command; only a global one
  // before the command sets their RPC deadline.
  std::optional<std::string> timeout = ctx.global.Get("timeout");
  bool command_owns_timeout = false;
  for (const FlagSpec& f : command->flags) {
    command_owns_timeout |= f.name == "timeout";
  }
  if (!command_owns_timeout && ctx.args.Get("timeout").has_value()) {
    timeout = ctx.args.Get("timeout");
  }
  if (timeout.has_value()) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*timeout);
    if (!d.ok()) return ctx.Error(d.status());
    ctx.call.timeout =
        *d == absl::ZeroDuration() ? absl::InfiniteDuration() : *d;
    ctx.timeout_given = true;
  }
  int rc = command->run(ctx);
  if (!out.flush() && rc == kExitOk) {
    err << "gpumigctl: " << command->name << ": error writing the output\n";
    rc = kExitOther;
  }
  return rc;
}

}  // namespace gpumig::cli
