// Command-line parsing for gpumigctl: a small, explicit flag parser for one
// subcommand at a time, value parsers (sizes with unit suffixes, durations,
// integers) and the mapping from a status to the CLI's exit code.
//
// Why not absl flags: its flags are process-global, so every subcommand would
// see every other subcommand's flags, and the usage text could not be per
// subcommand. Here each subcommand declares its flags as a list of FlagSpec
// and gets back exactly those.
//
// Syntax accepted by ParseArgs:
//   --name=value  --name value   a flag that takes a value
//   --name                       a boolean flag (--name=true/false also works)
//   -x                           a declared one-letter alias (e.g. -h)
//   --                           everything after it is positional
//   -                            a positional (conventionally stdin/stdout)
// Anything else starting with '-' that is not declared is an error, as is a
// flag given twice, a value missing after a value flag, or a value given to a
// boolean flag other than true/false. Flags and positionals may interleave.
//
// Nothing here is thread-hostile: every function is pure.
#ifndef GPUMIG_CLIENT_CLI_ARGS_H_
#define GPUMIG_CLIENT_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gpumig::cli {

// One flag a subcommand accepts.
struct FlagSpec {
  // Long name without the leading "--", e.g. "offset".
  std::string name;
  // Placeholder shown in usage for a value flag (e.g. "N"); empty for a
  // boolean flag.
  std::string value_name;
  // One line of help.
  std::string help;
  // Optional one-letter alias without the '-', e.g. 'h'; 0 for none.
  char short_name = 0;

  bool takes_value() const { return !value_name.empty(); }
};

// The result of parsing one argument list against a set of FlagSpecs.
class ParsedArgs {
 public:
  // Positionals in order (after removing flags and "--").
  const std::vector<std::string>& positional() const { return positional_; }

  // Whether the flag was given (boolean flags: and not set to false).
  bool Has(absl::string_view name) const;
  // The value of a value flag, or nullopt if absent.
  std::optional<std::string> Get(absl::string_view name) const;
  // The value of a value flag, or `fallback` if absent.
  std::string GetOr(absl::string_view name, absl::string_view fallback) const;

  // Whether the flag was given at all (even as --flag=false).
  bool Given(absl::string_view name) const;

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(
      const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);

  std::vector<std::string> positional_;
  // Value flags: the value; boolean flags: nullopt when false, "" when true.
  std::map<std::string, std::optional<std::string>, std::less<>> flags_;
};

// Parses `args` (without the program and subcommand names) against `specs`.
//
// INVALID_ARGUMENT: an undeclared flag, a flag given twice, a value flag
//   without a value, a boolean flag with a value other than true/false. The
//   message names the offending argument and is fit for a usage error.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs);

// Formats the flags for a usage message, one per line, aligned:
//   "  --offset N           where to start\n".
std::string FormatFlagHelp(const std::vector<FlagSpec>& specs);

// Parses a byte count (common/bytes.h, ByteSizeSyntax::kCommandLine):
// decimal digits, or 0x-prefixed hex, optionally followed by a unit. Units
// are binary and case-insensitive: B; K, KB, KiB (1024); M, MB, MiB; G, GB,
// GiB; T, TB, TiB. Whitespace between the number and the unit is not
// allowed; "4K", "64MiB", "4096", "0x1000" are valid.
//
// INVALID_ARGUMENT: empty, not a number, an unknown unit, a negative value,
//   a fraction, or a result over 2^64 - 1.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// Parses an unsigned integer (decimal or 0x-hex) at most `max`.
//
// INVALID_ARGUMENT: not an unsigned integer, or over `max`.
absl::StatusOr<uint64_t> ParseUint(absl::string_view text,
                                   uint64_t max = UINT64_MAX);

// Parses a probability: a decimal number in [0, 1].
//
// INVALID_ARGUMENT: not a number, or outside [0, 1].
absl::StatusOr<double> ParseProbability(absl::string_view text);

// Parses a duration (common/duration.h, ParseNonNegativeDuration): an absl
// duration ("10s", "1.5s", "250ms", "2m", "1h30m", "inf") or a bare
// non-negative number of seconds ("10", "0.5").
//
// INVALID_ARGUMENT: anything else, or negative.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

// Splits "a,b,c" into {"a","b","c"}, dropping empty items.
std::vector<std::string> SplitList(absl::string_view text);

// gpumigctl's exit codes. Stable: scripts depend on them; documented in the
// usage text and client/README.md.
enum ExitCode : int {
  kExitOk = 0,
  // The command ran and reports a negative result (selftest violations).
  kExitCheckFailed = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitPermissionDenied = 4,
  // INVALID_ARGUMENT or OUT_OF_RANGE, from the daemon or from local parsing
  // of a value (a bad size, a bad number).
  kExitInvalidArgument = 5,
  kExitResourceExhausted = 6,
  // DATA_LOSS: the object is in unknown state (also a fence whose outcome is
  // UNKNOWN_STATE).
  kExitDataLoss = 7,
  kExitDeadlineExceeded = 8,
  // UNAVAILABLE: the daemon is not running, not reachable, or shutting down.
  kExitUnavailable = 9,
  kExitFailedPrecondition = 10,
  // Any other code (INTERNAL, UNAUTHENTICATED, CANCELLED, UNKNOWN, local I/O
  // errors, ...).
  kExitOther = 11,
  // The operation did not take effect and may be retried: the RPC succeeded
  // but the fence it reports ended FAILED, or the RPC failed ABORTED (a move
  // that failed synchronously, nothing changed; or a read/write whose copy
  // engine transfer failed, which a write may have applied in part).
  kExitOperationFailed = 12,
};

// The exit code for a non-OK status (kExitOk for OK).
ExitCode ExitCodeForStatus(const absl::Status& status);

// The exit-code table as printed in the usage text.
std::string ExitCodeHelp();

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CLI_ARGS_H_
