#include "core/shm/registration_server.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"
#include "core/shm/registration_protocol.h"

namespace gpumig {
namespace shm {
namespace {

// Room for this many fds: one more is what a buggy client sends most, and
// anything beyond shows up as MSG_CTRUNC (all received are closed).
constexpr int kMaxFds = 8;

}  // namespace

RegistrationServer::RegistrationServer(SharedBufferRegistry* reg) : reg_(reg) {}

RegistrationServer::~RegistrationServer() { Stop(); }

absl::Status RegistrationServer::Start(const std::string& path, mode_t mode,
                                       gid_t gid) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("shared-buffer socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("bind ", path, ": ", strerror(e)));
  }
  if (chmod(path.c_str(), mode) != 0 ||
      (gid != static_cast<gid_t>(-1) &&
       chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) ||
      listen(fd, 64) != 0) {
    int e = errno;
    close(fd);
    unlink(path.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("shared-buffer socket ", path, ": ", strerror(e)));
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    close(fd);
    unlink(path.c_str());
    return absl::InternalError("eventfd failed");
  }
  listen_fd_ = fd;
  path_ = path;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void RegistrationServer::AcceptLoop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ucred cred{};
    socklen_t cl = sizeof(cred);
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
      close(c);
      continue;
    }
    MutexLock l(&mu_);
    // Reap connections that ended.
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->second->done) {
        it->second->thread.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    if (stopping_) {
      close(c);
      return;
    }
    uint64_t id = reg_->OpenConnection();
    auto conn = std::make_unique<Conn>();
    conn->fd = c;
    uint32_t uid = cred.uid;
    conn->thread = std::thread([this, id, c, uid] { Serve(id, c, uid); });
    conns_[id] = std::move(conn);
  }
}

void RegistrationServer::Serve(uint64_t conn, int fd, uint32_t uid) {
  for (;;) {
    uint8_t buf[kRequestSize + 1];
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * kMaxFds)];
    iovec iov{buf, sizeof(buf)};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof(ctrl);
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Closed or broken (0-length records are not requests a client can
      // mean; treat as end too). Harvest any fds first.
      if (n == 0) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; ++i) {
              int f;
              std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
              close(f);
            }
          }
        }
      }
      break;
    }
    ShmMessage msg;
    msg.data = buf;
    msg.len = static_cast<size_t>(n);
    msg.data_truncated = (mh.msg_flags & MSG_TRUNC) != 0;
    msg.control_truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; ++i) {
          int f;
          std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          msg.fds.push_back(f);
        }
      } else {
        msg.other_control = true;
      }
    }
    ShmReply rep = HandleRegistrationMessage(reg_, uid, conn, std::move(msg));
    auto out = EncodeReply(rep);
    if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;
  }
  reg_->CloseConnection(conn);
  {
    MutexLock l(&mu_);
    auto it = conns_.find(conn);
    if (it != conns_.end()) {
      it->second->fd = -1;
      it->second->done = true;
    }
  }
  close(fd);
}

void RegistrationServer::Stop() {
  if (listen_fd_ < 0) return;
  {
    MutexLock l(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  accept_thread_.join();
  std::map<uint64_t, std::unique_ptr<Conn>> conns;
  {
    MutexLock l(&mu_);
    for (auto& [id, c] : conns_) {
      if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    }
  }
  // Serve() closes each fd and marks done; join outside mu_.
  for (;;) {
    std::unique_ptr<Conn> c;
    {
      MutexLock l(&mu_);
      if (conns_.empty()) break;
      c = std::move(conns_.begin()->second);
      conns_.erase(conns_.begin());
    }
    c->thread.join();
  }
  close(listen_fd_);
  close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  unlink(path_.c_str());
}

}  // namespace shm
}  // namespace gpumig
