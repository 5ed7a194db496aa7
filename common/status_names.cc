#include "common/status_names.h"

#include <array>
#include <string>

namespace gpumig {

absl::string_view StatusCodeName(int code) {
  // absl's names, kept for the life of the process (absl hands out strings).
  static const std::array<std::string, kStatusCodeCount>* const kNames = [] {
    auto* names = new std::array<std::string, kStatusCodeCount>;
    for (int i = 0; i < kStatusCodeCount; ++i) {
      (*names)[i] = absl::StatusCodeToString(static_cast<absl::StatusCode>(i));
    }
    return names;
  }();
  if (code < 0 || code >= kStatusCodeCount)
    return (*kNames)[static_cast<int>(absl::StatusCode::kUnknown)];
  return (*kNames)[code];
}

}  // namespace gpumig
