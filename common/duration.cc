#include "common/duration.h"

#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gpumig {

absl::StatusOr<absl::Duration> ParseNonNegativeDuration(
    absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad duration '", text, "' (examples: 10s, 500ms, 2m, 1.5, inf)"));
  };
  if (text.empty()) return bad();
  absl::Duration d;
  double seconds;
  if (absl::ParseDuration(text, &d)) {
    // absl accepts "0" and signed values; "0" is fine, negatives are not.
  } else if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds) &&
             absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
    d = absl::Seconds(seconds);
  } else {
    return bad();
  }
  if (d < absl::ZeroDuration()) return bad();
  return d;
}

std::string FormatDurationRounded(absl::Duration d) {
  const absl::Duration magnitude = d < absl::ZeroDuration() ? -d : d;
  if (magnitude >= absl::Hours(1)) {
    d = absl::Trunc(d, absl::Seconds(1));
  } else if (magnitude >= absl::Seconds(1)) {
    d = absl::Trunc(d, absl::Milliseconds(1));
  } else if (magnitude >= absl::Milliseconds(1)) {
    d = absl::Trunc(d, absl::Microseconds(1));
  }
  return absl::FormatDuration(d);
}

}  // namespace gpumig
