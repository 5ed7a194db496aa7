// Durations as people write and read them: the parser gpumigctl's timeout
// flags use, and the rounded form its tables print.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_DURATION_H_
#define GPUMIG_COMMON_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gpumig {

// Parses an absl duration ("10s", "1.5s", "250ms", "2m", "1h30m", "0",
// "inf") or a bare number of seconds starting with a digit ("10", "0.5").
//
// INVALID_ARGUMENT: empty, anything else, or negative.
absl::StatusOr<absl::Duration> ParseNonNegativeDuration(absl::string_view text);

// absl::FormatDuration of `d` truncated to about three digits below its
// leading unit: 1234567 ns -> "1.234ms", 3723.5 s -> "1h2m3s".
std::string FormatDurationRounded(absl::Duration d);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_DURATION_H_
