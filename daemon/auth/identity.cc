#include "daemon/auth/identity.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"

namespace gpumig {
namespace daemon {

absl::StatusOr<PeerCred> GetPeerCred(int fd) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(
        absl::StrCat("getsockopt(SO_PEERCRED): ", std::strerror(errno)));
  }
  return PeerCred{cred.pid, cred.uid, cred.gid};
}

absl::StatusOr<gid_t> LookupGroup(const std::string& name) {
  struct group grp;
  struct group* result = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &result) != 0 ||
      result == nullptr) {
    return absl::NotFoundError(absl::StrCat("no such group \"", name, "\""));
  }
  return result->gr_gid;
}

bool IsUnixAdmin(uid_t uid, gid_t gid, std::optional<gid_t> admin_gid) {
  if (uid == 0) return true;
  if (!admin_gid.has_value()) return false;
  if (gid == *admin_gid) return true;
  struct passwd pw;
  struct passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0 ||
      result == nullptr) {
    return false;  // No user entry: no supplementary groups.
  }
  int n = 64;
  std::vector<gid_t> groups(n);
  while (getgrouplist(result->pw_name, result->pw_gid, groups.data(), &n) ==
         -1) {
    if (n <= static_cast<int>(groups.size())) return false;
    groups.resize(n);
  }
  groups.resize(n);
  return std::find(groups.begin(), groups.end(), *admin_gid) != groups.end();
}

Principal UnixPrincipal(uid_t uid, bool admin) {
  Principal p;
  p.uid = uid;
  p.name = absl::StrCat("uid:", uid);
  p.admin = admin;
  return p;
}

absl::StatusOr<Principal> CertificatePrincipal(
    absl::string_view subject, const std::vector<std::string>& admin_subjects) {
  if (subject.empty() || absl::StartsWith(subject, "uid:") ||
      absl::StartsWith(subject, "gpumigd:")) {
    return absl::UnauthenticatedError(
        "the client certificate has no usable subject");
  }
  Principal p;
  p.uid = kNoUid;
  p.name = std::string(subject);
  p.admin = std::find(admin_subjects.begin(), admin_subjects.end(), subject) !=
            admin_subjects.end();
  return p;
}

std::string ConnectionTable::PeerName(int fd) {
  return absl::StrCat("fd:", fd);
}

void ConnectionTable::Register(int fd, Principal principal) {
  absl::MutexLock lock(&mu_);
  by_peer_[PeerName(fd)] = std::move(principal);
}

std::optional<Principal> ConnectionTable::Lookup(absl::string_view peer) const {
  absl::MutexLock lock(&mu_);
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return std::nullopt;
  return it->second;
}

size_t ConnectionTable::size() const {
  absl::MutexLock lock(&mu_);
  return by_peer_.size();
}

Authenticator::Authenticator(const ConnectionTable* connections,
                             std::vector<std::string> admin_subjects)
    : connections_(connections), admin_subjects_(std::move(admin_subjects)) {}

absl::StatusOr<Principal> Authenticator::Authenticate(
    absl::string_view peer, const grpc::AuthContext* auth) const {
  if (absl::StartsWith(peer, "fd:")) {
    std::optional<Principal> p = connections_->Lookup(peer);
    if (!p.has_value()) {
      return absl::UnauthenticatedError("unknown unix connection");
    }
    return *std::move(p);
  }
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "TCP callers must present a client certificate (mutual TLS)");
  }
  std::vector<grpc::string_ref> subjects =
      auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (subjects.size() != 1) {
    return absl::UnauthenticatedError(
        "the client certificate has no usable subject");
  }
  return CertificatePrincipal(
      absl::string_view(subjects[0].data(), subjects[0].size()),
      admin_subjects_);
}

}  // namespace daemon
}  // namespace gpumig
