// Caller identity for gpumigd.
//
// Unix socket. gRPC C++ exposes no peer credentials, so the daemon accepts
// connections itself (UnixListener), reads SO_PEERCRED, and hands each fd to
// the gRPC server with grpc::AddInsecureChannelFromFd. gRPC names such a
// connection's peer "fd:<n>" (ServerContext::peer()), n being the descriptor
// number. ConnectionTable maps that peer string to the identity read at
// accept time. The kernel reuses a descriptor number only after it has been
// closed, and gRPC closes it only when the connection is gone, so the next
// accept returning the same number simply overwrites the stale entry; the
// table never holds more entries than there are open descriptors.
//
// Residual window (documented, not closable from outside gRPC): a call that
// arrived on a connection whose descriptor gRPC closes (client gone) after
// the call was received but before its handler read the table, while a new
// connection is accepted on the same number, would be attributed to the new
// connection. Handlers read the identity first thing, which keeps that
// window to the time between a call's arrival and its handler starting.
//
// TCP: mutual TLS only (the server requires and verifies a client
// certificate); the principal is the certificate's subject as gRPC reports it
// (AuthContext property "x509_subject", e.g. "CN=rig,O=lab"), uid
// kNoUid, admin iff the subject is listed in admin_subjects.
//
// Principal names: "uid:<n>" on the unix socket, the RFC 2253 subject on TCP
// (always "attr=value,..." so the two never collide), and names starting
// with "gpumigd:" are reserved for the daemon's own work (SelfTest).
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_AUTH_IDENTITY_H_
#define GPUMIG_DAEMON_AUTH_IDENTITY_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/base/principal.h"

namespace grpc {
class AuthContext;
}  // namespace grpc

namespace gpumig {
namespace daemon {

// Principal.uid of callers that are not unix users (TCP certificates).
inline constexpr uint32_t kNoUid = 0xffffffffu;

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// SO_PEERCRED of a connected unix socket. INTERNAL with errno text.
absl::StatusOr<PeerCred> GetPeerCred(int fd);

// The gid of group `name`; NOT_FOUND if there is none.
absl::StatusOr<gid_t> LookupGroup(const std::string& name);

// Admin on the unix socket: uid 0, or `admin_gid` is set and is `gid` or one
// of the supplementary groups of the user owning `uid` (getgrouplist).
bool IsUnixAdmin(uid_t uid, gid_t gid, std::optional<gid_t> admin_gid);

Principal UnixPrincipal(uid_t uid, bool admin);

// The principal of a TCP client whose certificate has `subject`.
// UNAUTHENTICATED if the subject is empty or could be mistaken for another
// kind of name ("uid:..." or "gpumigd:...").
absl::StatusOr<Principal> CertificatePrincipal(
    absl::string_view subject, const std::vector<std::string>& admin_subjects);

// Identities of the connections handed to gRPC by descriptor.
class ConnectionTable {
 public:
  // gRPC's peer string for a connection added by descriptor `fd`.
  static std::string PeerName(int fd);

  // Records the identity of the connection on `fd`, replacing whatever an
  // earlier (closed) connection with that number left.
  void Register(int fd, Principal principal) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<Principal> Lookup(absl::string_view peer) const
      ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Principal> by_peer_ ABSL_GUARDED_BY(mu_);
};

// Resolves the principal of one call.
class Authenticator {
 public:
  Authenticator(const ConnectionTable* connections,
                std::vector<std::string> admin_subjects);

  // `peer` is ServerContext::peer(); `auth` its auth_context() (may be null).
  // "fd:<n>" peers come from the unix listener; any other peer must carry an
  // authenticated x509 subject (TCP with mutual TLS). UNAUTHENTICATED if the
  // identity cannot be established.
  absl::StatusOr<Principal> Authenticate(absl::string_view peer,
                                         const grpc::AuthContext* auth) const;

 private:
  const ConnectionTable* const connections_;
  const std::vector<std::string> admin_subjects_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_AUTH_IDENTITY_H_
