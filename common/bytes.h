// Byte counts as people write and read them: the one parser of sizes with
// unit suffixes ("64MiB", "4K") and the two formatters ("1.5 KiB" for
// people, "64 MiB" exact for logs and errors). Every unit is binary
// (K = KiB = 1024).
//
// Two syntaxes, one grammar: gpumigctl's flags are lenient (case-free units,
// short units, hex) and the daemon's config file strict (only B, KiB, MiB,
// GiB, TiB, so "MB" is never mistaken for 10^6); each keeps its own error
// wording, which the CLI and the config loader print as they are.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_BYTES_H_
#define GPUMIG_COMMON_BYTES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gpumig {

enum class ByteSizeSyntax {
  // gpumigctl: decimal digits or 0x-prefixed hex, then optionally a unit,
  // case-insensitive: B; K, KB, KiB; M, MB, MiB; G, GB, GiB; T, TB, TiB. No
  // whitespace anywhere. Errors read "bad size '<text>': <why> (examples:
  // ...)".
  kCommandLine,
  // The config file: decimal digits, then optionally one of B, KiB, MiB, GiB,
  // TiB exactly as written; whitespace around the value and between the
  // number and the unit is allowed. Errors read "size \"<text>\" ...".
  kConfigFile,
};

// Parses a byte count in `syntax`.
//
// INVALID_ARGUMENT: empty, not a number, a sign, a fraction, an unknown unit,
//   or a value over 2^64 - 1 (16 EiB - 1).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text,
                                       ByteSizeSyntax syntax);

// For people: the largest binary unit (up to TiB) not above the value, with
// one decimal unless the value is a whole number of it. 0 -> "0 B",
// 1536 -> "1.5 KiB", 64 MiB -> "64 MiB".
std::string FormatBytes(uint64_t bytes);

// Exact: the largest binary unit (up to TiB) that divides the value.
// 1536 -> "1536 B", 64 MiB -> "64 MiB", 3 GiB + 4 KiB -> "3145732 KiB".
std::string FormatBytesExact(uint64_t bytes);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_BYTES_H_
