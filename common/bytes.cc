#include "common/bytes.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/numbers.h"

namespace gpumig {
namespace {

constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
constexpr int kLargestUnit = 4;

// Why a size was refused; each syntax words it its own way.
enum class Problem {
  kEmpty,
  kNotANumber,
  kNumberOverflow,  // the digits alone exceed 2^64 - 1
  kFraction,
  kUnknownUnit,
  kTooLarge,  // the number times the unit exceeds 2^64 - 1
};

absl::Status SizeError(ByteSizeSyntax syntax, absl::string_view text,
                       Problem problem, absl::string_view unit) {
  if (syntax == ByteSizeSyntax::kConfigFile) {
    const std::string quoted = absl::StrCat("\"", text, "\"");
    switch (problem) {
      case Problem::kNumberOverflow:
      case Problem::kTooLarge:
        return absl::InvalidArgumentError(
            absl::StrCat("size ", quoted, " is too large"));
      case Problem::kFraction:
      case Problem::kUnknownUnit:
        return absl::InvalidArgumentError(
            absl::StrCat("size ", quoted, ": unknown unit \"", unit,
                         "\" (use B, KiB, MiB, GiB or TiB)"));
      case Problem::kEmpty:
      case Problem::kNotANumber:
        break;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "size ", quoted,
        " is not a number with an optional unit (B, KiB, MiB, GiB, TiB)"));
  }
  std::string why;
  switch (problem) {
    case Problem::kEmpty:
      why = "empty";
      break;
    case Problem::kNotANumber:
      why = "not a number";
      break;
    case Problem::kNumberOverflow:
      why = "not a number or too large";
      break;
    case Problem::kFraction:
      why = "fractions are not supported";
      break;
    case Problem::kUnknownUnit:
      why = absl::StrCat("unknown unit '", unit, "'");
      break;
    case Problem::kTooLarge:
      why = "too large";
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad size '", text, "': ", why,
                   " (examples: 4096, 4K, 1M, 64MiB, 0x1000)"));
}

// log2 of the unit's multiplier, or nullopt for an unknown unit.
std::optional<int> UnitShift(absl::string_view unit, ByteSizeSyntax syntax) {
  if (unit.empty()) return 0;
  for (int i = 0; i <= kLargestUnit; ++i) {
    const absl::string_view binary = kUnits[i];  // "B", "KiB", ...
    if (syntax == ByteSizeSyntax::kConfigFile) {
      if (unit == binary) return 10 * i;
      continue;
    }
    // The command line also takes "K" and "KB" for "KiB" (any case).
    const absl::string_view letter = binary.substr(0, 1);
    if (absl::EqualsIgnoreCase(unit, binary) ||
        (i > 0 && (absl::EqualsIgnoreCase(unit, letter) ||
                   absl::EqualsIgnoreCase(unit, absl::StrCat(letter, "B"))))) {
      return 10 * i;
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text,
                                       ByteSizeSyntax syntax) {
  const bool strict = syntax == ByteSizeSyntax::kConfigFile;
  absl::string_view s = strict ? absl::StripAsciiWhitespace(text) : text;
  if (s.empty()) return SizeError(syntax, text, Problem::kEmpty, "");
  // The number: decimal, or (command line) hex after "0x".
  const bool hex =
      !strict && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  size_t end = hex ? 2 : 0;
  while (end < s.size() &&
         (hex ? absl::ascii_isxdigit(static_cast<unsigned char>(s[end]))
              : absl::ascii_isdigit(static_cast<unsigned char>(s[end])))) {
    ++end;
  }
  if (end == 0) return SizeError(syntax, text, Problem::kNotANumber, "");
  const std::optional<uint64_t> number = ParseUint64(s.substr(0, end));
  if (!number.has_value()) {
    return SizeError(syntax, text, Problem::kNumberOverflow, "");
  }
  absl::string_view unit = s.substr(end);
  if (strict) unit = absl::StripLeadingAsciiWhitespace(unit);
  const std::optional<int> shift = UnitShift(unit, syntax);
  if (!shift.has_value()) {
    const bool fraction = !strict && unit[0] == '.';
    return SizeError(syntax, text,
                     fraction ? Problem::kFraction : Problem::kUnknownUnit,
                     unit);
  }
  if (*shift > 0 && *number > (UINT64_MAX >> *shift)) {
    return SizeError(syntax, text, Problem::kTooLarge, unit);
  }
  return *number << *shift;
}

std::string FormatBytes(uint64_t bytes) {
  int unit = 0;
  uint64_t divisor = 1;
  while (unit < kLargestUnit && bytes / 1024 >= divisor) {
    divisor *= 1024;
    ++unit;
  }
  if (bytes % divisor == 0) {
    return absl::StrCat(bytes / divisor, " ", kUnits[unit]);
  }
  // 1023.96 KiB prints as "1024.0 KiB": honest, and still short.
  return absl::StrCat(absl::StrFormat("%.1f", static_cast<double>(bytes) /
                                                  static_cast<double>(divisor)),
                      " ", kUnits[unit]);
}

std::string FormatBytesExact(uint64_t bytes) {
  int unit = 0;
  uint64_t v = bytes;
  while (unit < kLargestUnit && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++unit;
  }
  return absl::StrCat(v, " ", kUnits[unit]);
}

}  // namespace gpumig
