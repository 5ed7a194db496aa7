// Unsigned integers as people type them: decimal, or hex after "0x". The one
// digit parser under byte sizes and gpumigctl's numeric flags.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_NUMBERS_H_
#define GPUMIG_COMMON_NUMBERS_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace gpumig {

// Decimal digits, or "0x"/"0X" followed by at least one hex digit; nothing
// else (no sign, no spaces, no suffix). nullopt for anything else or a value
// over 2^64 - 1.
std::optional<uint64_t> ParseUint64(absl::string_view text);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_NUMBERS_H_
