#include "client/cli_args.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/bytes.h"
#include "common/duration.h"
#include "common/numbers.h"

namespace gpumig::cli {
namespace {

const FlagSpec* FindLong(const std::vector<FlagSpec>& specs,
                         absl::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const FlagSpec* FindShort(const std::vector<FlagSpec>& specs, char c) {
  for (const FlagSpec& spec : specs) {
    if (spec.short_name != 0 && spec.short_name == c) return &spec;
  }
  return nullptr;
}

}  // namespace

bool ParsedArgs::Has(absl::string_view name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.has_value();
}

bool ParsedArgs::Given(absl::string_view name) const {
  return flags_.find(name) != flags_.end();
}

std::optional<std::string> ParsedArgs::Get(absl::string_view name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return std::nullopt;
  return it->second;
}

std::string ParsedArgs::GetOr(absl::string_view name,
                              absl::string_view fallback) const {
  std::optional<std::string> value = Get(name);
  return value.has_value() ? *value : std::string(fallback);
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs) {
  ParsedArgs parsed;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg == "-" || arg.empty() || arg[0] != '-') {
      parsed.positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    const FlagSpec* spec = nullptr;
    std::optional<std::string> inline_value;
    if (arg.size() > 2 && arg[1] == '-') {
      absl::string_view body = absl::string_view(arg).substr(2);
      size_t eq = body.find('=');
      if (eq != absl::string_view::npos) {
        inline_value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      spec = FindLong(specs, body);
    } else if (arg.size() == 2 && arg[1] != '-') {
      spec = FindShort(specs, arg[1]);
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
    if (parsed.Given(spec->name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", spec->name, " given twice"));
    }
    if (spec->takes_value()) {
      if (!inline_value.has_value()) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("flag --", spec->name, " needs a value (",
                           spec->value_name, ")"));
        }
        inline_value = args[++i];
      }
      parsed.flags_[spec->name] = *inline_value;
    } else {
      bool on = true;
      if (inline_value.has_value()) {
        std::string v = absl::AsciiStrToLower(*inline_value);
        if (v == "true" || v == "1" || v == "yes") {
          on = true;
        } else if (v == "false" || v == "0" || v == "no") {
          on = false;
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              "flag --", spec->name, " takes no value (or true/false), got '",
              *inline_value, "'"));
        }
      }
      parsed.flags_[spec->name] =
          on ? std::optional<std::string>("") : std::nullopt;
    }
  }
  return parsed;
}

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> lefts;
  size_t width = 0;
  for (const FlagSpec& spec : specs) {
    std::string left = "  ";
    if (spec.short_name != 0) {
      absl::StrAppend(&left, "-", std::string(1, spec.short_name), ", ");
    }
    absl::StrAppend(&left, "--", spec.name);
    if (spec.takes_value()) absl::StrAppend(&left, " ", spec.value_name);
    width = std::max(width, left.size());
    lefts.push_back(std::move(left));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::StrAppend(&out, lefts[i],
                    std::string(width - lefts[i].size() + 2, ' '),
                    specs[i].help, "\n");
  }
  return out;
}

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  return ParseByteSize(text, ByteSizeSyntax::kCommandLine);
}

absl::StatusOr<uint64_t> ParseUint(absl::string_view text, uint64_t max) {
  std::optional<uint64_t> value = ParseUint64(text);
  if (!value.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an unsigned integer"));
  }
  if (*value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is larger than ", max));
  }
  return *value;
}

absl::StatusOr<double> ParseProbability(absl::string_view text) {
  double p;
  if (!absl::SimpleAtod(text, &p) || std::isnan(p) || p < 0.0 || p > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("probability '", text, "' is not a number in [0, 1]"));
  }
  return p;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  return ParseNonNegativeDuration(text);
}

std::vector<std::string> SplitList(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    out.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return out;
}

ExitCode ExitCodeForStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kPermissionDenied:
      return kExitPermissionDenied;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitInvalidArgument;
    case absl::StatusCode::kResourceExhausted:
      return kExitResourceExhausted;
    case absl::StatusCode::kDataLoss:
      return kExitDataLoss;
    case absl::StatusCode::kDeadlineExceeded:
      return kExitDeadlineExceeded;
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    case absl::StatusCode::kFailedPrecondition:
      return kExitFailedPrecondition;
    case absl::StatusCode::kAborted:
      return kExitOperationFailed;
    default:
      return kExitOther;
  }
}

std::string ExitCodeHelp() {
  return "Exit codes:\n"
         "   0  ok\n"
         "   1  the command ran and found a problem (selftest violations)\n"
         "   2  usage error (unknown subcommand or flag, missing argument)\n"
         "   3  NOT_FOUND (no such object, fence, region or fault)\n"
         "   4  PERMISSION_DENIED (another principal's object; admin only)\n"
         "   5  INVALID_ARGUMENT or OUT_OF_RANGE (bad size, value or range)\n"
         "   6  RESOURCE_EXHAUSTED (no room even after eviction; quota)\n"
         "   7  DATA_LOSS (object in unknown state; fence UNKNOWN_STATE)\n"
         "   8  DEADLINE_EXCEEDED (RPC deadline or fence wait timeout)\n"
         "   9  UNAVAILABLE (daemon not running, unreachable or shutting "
         "down)\n"
         "  10  FAILED_PRECONDITION (pinned; unpin at 0; fault injection "
         "off; self-test busy)\n"
         "  11  any other error (INTERNAL, UNAUTHENTICATED, local I/O, ...)\n"
         "  12  the operation did not take effect: its fence ended FAILED, "
         "or ABORTED\n"
         "      (retry)\n";
}

}  // namespace gpumig::cli
