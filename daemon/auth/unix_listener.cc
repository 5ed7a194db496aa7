#include "daemon/auth/unix_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/log.h"

namespace gpumig {
namespace daemon {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Create(
    UnixListenerOptions options) {
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (options.path.empty() || options.path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path \"", options.path, "\" is empty or longer than ",
        sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, options.path.data(), options.path.size());

  std::optional<gid_t> admin_gid;
  if (!options.admin_group.empty()) {
    absl::StatusOr<gid_t> g = LookupGroup(options.admin_group);
    if (!g.ok()) return g.status();
    admin_gid = *g;
  }
  std::optional<gid_t> socket_gid;
  if (!options.group.empty()) {
    absl::StatusOr<gid_t> g = LookupGroup(options.group);
    if (!g.ok()) return g.status();
    socket_gid = *g;
  }

  const std::string dir = Dirname(options.path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno(absl::StrCat("mkdir ", dir));
    }
  }
  if (lstat(options.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          options.path, " exists and is not a socket; not replacing it"));
    }
    if (unlink(options.path.c_str()) != 0) {
      return Errno(absl::StrCat("unlink stale socket ", options.path));
    }
  }

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket(AF_UNIX)");
  // Nobody may connect before the mode is right: bind with a tight umask.
  const mode_t old_umask = umask(0177);
  const int bound =
      bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  umask(old_umask);
  if (bound != 0) {
    absl::Status s = Errno(absl::StrCat("bind ", options.path));
    close(fd);
    return s;
  }
  if (socket_gid.has_value() &&
      chown(options.path.c_str(), static_cast<uid_t>(-1), *socket_gid) != 0) {
    absl::Status s = Errno(absl::StrCat("chown ", options.path));
    close(fd);
    unlink(options.path.c_str());
    return s;
  }
  if (chmod(options.path.c_str(), options.mode) != 0) {
    absl::Status s = Errno(absl::StrCat("chmod ", options.path));
    close(fd);
    unlink(options.path.c_str());
    return s;
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    absl::Status s = Errno("eventfd");
    close(fd);
    unlink(options.path.c_str());
    return s;
  }
  return std::unique_ptr<UnixListener>(
      new UnixListener(std::move(options), fd, wake, admin_gid));
}

UnixListener::UnixListener(UnixListenerOptions options, int fd, int wake_fd,
                           std::optional<gid_t> admin_gid)
    : options_(std::move(options)),
      listen_fd_(fd),
      wake_fd_(wake_fd),
      admin_gid_(admin_gid) {}

UnixListener::~UnixListener() {
  Stop();
  close(listen_fd_);
  close(wake_fd_);
}

absl::Status UnixListener::Start(ConnectionTable* connections,
                                 std::function<void(int)> handoff) {
  absl::MutexLock lock(&mu_);
  if (stopped_ || thread_.joinable()) {
    return absl::FailedPreconditionError("listener already started or stopped");
  }
  if (listen(listen_fd_, options_.backlog) != 0) {
    return Errno(absl::StrCat("listen ", options_.path));
  }
  thread_ =
      std::thread([this, connections, handoff = std::move(handoff)]() mutable {
        AcceptLoop(connections, std::move(handoff));
      });
  return absl::OkStatus();
}

void UnixListener::Stop() {
  std::thread t;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    t = std::move(thread_);
  }
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // The eventfd cannot overflow with one write; nothing to do.
  }
  if (t.joinable()) t.join();
  // New connection attempts now fail instead of queueing.
  shutdown(listen_fd_, SHUT_RDWR);
  unlink(options_.path.c_str());
}

void UnixListener::AcceptLoop(ConnectionTable* connections,
                              std::function<void(int)> handoff) {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, "accept_failed")
          .Kv("call", "poll")
          .Kv("error", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;  // Stop()
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      Log(LogLevel::kWarn, "accept_failed")
          .Kv("call", "accept4")
          .Kv("error", std::strerror(errno));
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: back off instead of spinning.
        struct pollfd wake = {wake_fd_, POLLIN, 0};
        if (poll(&wake, 1, 100) > 0) return;
      }
      continue;
    }
    absl::StatusOr<PeerCred> cred = GetPeerCred(fd);
    if (!cred.ok()) {
      Log(LogLevel::kWarn, "connection_refused")
          .Kv("reason", cred.status().message());
      close(fd);
      continue;
    }
    const bool admin = IsUnixAdmin(cred->uid, cred->gid, admin_gid_);
    connections->Register(fd, UnixPrincipal(cred->uid, admin));
    Log(LogLevel::kDebug, "connection")
        .Kv("peer", ConnectionTable::PeerName(fd))
        .Kv("uid", cred->uid)
        .Kv("gid", cred->gid)
        .Kv("pid", cred->pid)
        .Kv("admin", admin);
    handoff(fd);
  }
}

}  // namespace daemon
}  // namespace gpumig
