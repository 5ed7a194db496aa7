// The canonical names of status codes ("OK", "INVALID_ARGUMENT",
// "DATA_LOSS"): absl::StatusCode and google.rpc.Code / grpc::StatusCode
// share the numbers 0 to 16 and these names, so one table serves the
// daemon's metrics labels, logs and the CLI.
//
// Thread-safe.
#ifndef GPUMIG_COMMON_STATUS_NAMES_H_
#define GPUMIG_COMMON_STATUS_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace gpumig {

// The number of canonical codes (0 to 16).
inline constexpr int kStatusCodeCount = 17;

// The name of code `code` (absl::StatusCodeToString's), "UNKNOWN" outside
// 0 to 16.
absl::string_view StatusCodeName(int code);

// The name of `code`; "UNKNOWN" for a value outside the canonical range.
inline absl::string_view StatusCodeName(absl::StatusCode code) {
  return StatusCodeName(static_cast<int>(code));
}

}  // namespace gpumig

#endif  // GPUMIG_COMMON_STATUS_NAMES_H_
