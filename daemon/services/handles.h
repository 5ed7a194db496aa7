// Opaque identifiers on the wire.
//
// Object handles are "obj-<decimal id>": "obj-" then 1 to 20 digits without
// a leading zero, the id non-zero and below 2^64. Parsing is strict; any
// other string is INVALID_ARGUMENT "<field>: malformed handle" (or
// "<field>: required" when empty), and nothing is looked up. Clients treat
// handles as opaque; the format is the daemon's business.
//
// List page tokens are "p<a>-<id>": <a> is 1 when the listing covers all
// principals, else 0; <id> the last object id returned.
#ifndef GPUMIG_DAEMON_SERVICES_HANDLES_H_
#define GPUMIG_DAEMON_SERVICES_HANDLES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gpumig {
namespace daemon {

inline constexpr size_t kMaxHandleBytes = 64;

std::string FormatHandle(uint64_t object_id);
absl::StatusOr<uint64_t> ParseHandle(absl::string_view field,
                                     absl::string_view handle);

std::string FormatPageToken(bool all_principals, uint64_t last_id);
// INVALID_ARGUMENT "page_token: ..." if malformed or from a listing with
// another all_principals.
absl::StatusOr<uint64_t> ParsePageToken(absl::string_view token,
                                        bool all_principals);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_HANDLES_H_
