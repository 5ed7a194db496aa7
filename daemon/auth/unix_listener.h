// UnixListener: gpumigd's unix socket. Creates the socket file (replacing a
// stale socket, never another kind of file), sets its mode and group, and
// runs an accept loop on its own thread. For each connection it reads
// SO_PEERCRED, records the caller in a ConnectionTable under the peer name
// gRPC will give the connection ("fd:<n>", see identity.h), and hands the
// descriptor over (`handoff`, which in gpumigd calls
// grpc::AddInsecureChannelFromFd). The listener itself knows nothing of gRPC.
//
// Thread-safe. Stop() (or the destructor) ends the accept loop, closes the
// listening socket and removes the socket file; connections already handed
// over are not affected.
#ifndef GPUMIG_DAEMON_AUTH_UNIX_LISTENER_H_
#define GPUMIG_DAEMON_AUTH_UNIX_LISTENER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/auth/identity.h"

namespace gpumig {
namespace daemon {

struct UnixListenerOptions {
  std::string path;
  mode_t mode = 0660;
  std::string group;        // "" = leave the socket's group as created
  std::string admin_group;  // "" = only uid 0 is admin
  int backlog = 128;
};

class UnixListener {
 public:
  // Binds (connections are refused until Start). Creates the parent directory
  // if missing (mode 0755). INVALID_ARGUMENT: path too long;
  // FAILED_PRECONDITION: something other than a socket exists at `path`;
  // NOT_FOUND: unknown group; INTERNAL: a system call failed (the message names
  // it).
  static absl::StatusOr<std::unique_ptr<UnixListener>> Create(
      UnixListenerOptions options);
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
  ~UnixListener();

  // Listens and starts the accept loop: from here on connect() succeeds.
  // `connections` must outlive the listener; `handoff` takes ownership of
  // each accepted (non-blocking, close-on-exec) descriptor. Call once.
  // INTERNAL if listen() fails; FAILED_PRECONDITION on a second call.
  absl::Status Start(ConnectionTable* connections,
                     std::function<void(int)> handoff);
  // Stops accepting. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& path() const { return options_.path; }

 private:
  UnixListener(UnixListenerOptions options, int fd, int wake_fd,
               std::optional<gid_t> admin_gid);
  void AcceptLoop(ConnectionTable* connections,
                  std::function<void(int)> handoff);

  // Constant after construction.
  const UnixListenerOptions options_;
  const int listen_fd_;
  const int wake_fd_;  // eventfd: written by Stop() to end the loop
  const std::optional<gid_t> admin_gid_;

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_AUTH_UNIX_LISTENER_H_
