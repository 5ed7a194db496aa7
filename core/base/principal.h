// Principal: who is calling. A value type shared by core (object ownership),
// the daemon (authentication) and the client library; it has no
// dependencies so any layer may include it.
#ifndef GPUMIG_CORE_BASE_PRINCIPAL_H_
#define GPUMIG_CORE_BASE_PRINCIPAL_H_

#include <cstdint>
#include <string>

namespace gpumig {

// Who is calling: a uid (unix socket, SO_PEERCRED) or a certificate subject
// (TCP with mutual TLS). Admins may inject faults and see every object.
// Two principals own the same objects iff their names are equal.
struct Principal {
  uint32_t uid = 0;
  std::string name;  // "uid:1000" or the certificate subject
  bool admin = false;

  bool SameOwner(const Principal& other) const { return name == other.name; }
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_BASE_PRINCIPAL_H_
