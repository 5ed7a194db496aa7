// "host:port" addresses, split and checked in one place: the daemon's TCP
// listener and metrics endpoint (config, flags) and what they report back.
//
// The grammar: HOST ":" PORT, split at the last colon. HOST is non-empty and
// either a bracketed IPv6 literal ("[::1]") or a name or IPv4 literal with no
// colon and no brackets ("localhost", "127.0.0.1", "gpu-7"). PORT is 1 to 5
// decimal digits, at most 65535; 0 means "any free port" where binding.
// Whether HOST must be a literal address is the caller's rule (the metrics
// endpoint wants one; gRPC resolves names).
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_HOSTPORT_H_
#define GPUMIG_COMMON_HOSTPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gpumig {

struct HostPort {
  // Without the brackets of an IPv6 literal: "::1", "127.0.0.1", "localhost".
  std::string host;
  // Whether HOST was bracketed (an IPv6 literal).
  bool bracketed = false;
  uint16_t port = 0;

  // "host:port" again, brackets restored: "[::1]:9464".
  std::string ToString() const;
};

// Splits `address`.
//
// INVALID_ARGUMENT, whose message is only the reason (the caller names the
// field): "no port" (no colon), "bad port", "no host", "unclosed [",
// "brackets around a host that is not IPv6", "an IPv6 address needs
// brackets", "a stray bracket".
absl::StatusOr<HostPort> SplitHostPort(absl::string_view address);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_HOSTPORT_H_
