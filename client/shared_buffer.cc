#include "client/shared_buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gpumig::client {
namespace {

absl::Status Errno(int err, absl::string_view what) {
  if (err == ENOMEM || err == ENOSPC) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", std::strerror(err)));
  }
  return absl::ErrnoToStatus(err, what);
}

// Sends one request (with `fd` as SCM_RIGHTS when >= 0) and reads its reply.
absl::StatusOr<shm_wire::Reply> Exchange(int socket_fd,
                                         const shm_wire::Request& request,
                                         int fd) {
  std::array<uint8_t, shm_wire::kRequestBytes> bytes =
      shm_wire::EncodeRequest(request);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::UnavailableError(
        absl::StrCat("shared buffer socket: send: ", std::strerror(errno)));
  }
  // One byte more than a reply, to see an oversized record.
  std::array<uint8_t, shm_wire::kReplyBytes + 1> reply{};
  do {
    n = ::recv(socket_fd, reply.data(), reply.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::UnavailableError(
        absl::StrCat("shared buffer socket: receive: ", std::strerror(errno)));
  }
  if (n == 0) {
    return absl::UnavailableError(
        "shared buffer socket: the daemon closed the connection");
  }
  absl::StatusOr<shm_wire::Reply> r = shm_wire::DecodeReply(
      absl::MakeConstSpan(reply.data(), static_cast<size_t>(n)));
  if (!r.ok()) return r.status();
  if (r->tag != request.tag || r->op != request.op) {
    return absl::InternalError(
        "shared buffer socket: a reply to another request");
  }
  return r;
}

uint64_t NextTag() {
  static std::atomic<uint64_t> tag{1};
  return tag.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

absl::StatusOr<int> CreateSealedMemfd(uint64_t size) {
  if (size == 0 || size % shm_wire::kPageBytes != 0 ||
      size > (uint64_t{1} << 62)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared buffer size ", size, ": not a non-zero multiple of 4096"));
  }
  int fd =
      ::memfd_create("gpumig-shared-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Errno(errno, "memfd_create");
  int err;
  do {
    err = ::fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0 ? 0 : errno;
  } while (err == EINTR);
  if (err == EOPNOTSUPP) {
    err = ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
  }
  if (err != 0) {
    ::close(fd);
    return Errno(err, "sizing the shared buffer (fallocate)");
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
      0) {
    err = errno;
    ::close(fd);
    return Errno(err, "sealing the shared buffer");
  }
  return fd;
}

absl::StatusOr<SharedBuffer> SharedBuffer::Create(
    const std::string& socket_path, uint64_t size) {
  if (socket_path.empty()) {
    return absl::InvalidArgumentError("the daemon has no shared-buffer socket");
  }
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path too long: ", socket_path));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return Errno(errno, "socket");
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(s);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the shared-buffer socket ", socket_path,
                     ": ", std::strerror(err)));
  }
  return CreateOnSocket(s, size);
}

absl::StatusOr<SharedBuffer> SharedBuffer::CreateOnSocket(int socket_fd,
                                                          uint64_t size) {
  const uint64_t page = shm_wire::kPageBytes;
  if (size == 0 || size > (uint64_t{1} << 62)) {
    ::close(socket_fd);
    return absl::InvalidArgumentError(
        absl::StrCat("shared buffer size ", size, ": out of range"));
  }
  size = (size + page - 1) / page * page;
  absl::StatusOr<int> memfd = CreateSealedMemfd(size);
  if (!memfd.ok()) {
    ::close(socket_fd);
    return memfd.status();
  }
  void* p =
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ::close(*memfd);
    ::close(socket_fd);
    return Errno(err, "mapping the shared buffer");
  }
  shm_wire::Request request;
  request.op = shm_wire::kOpRegister;
  request.tag = NextTag();
  request.size = size;
  absl::StatusOr<shm_wire::Reply> reply = Exchange(socket_fd, request, *memfd);
  absl::Status status =
      reply.ok() ? shm_wire::ReplyStatus(*reply) : reply.status();
  if (status.ok() && (reply->buffer_id == 0 || reply->size != size)) {
    status = absl::InternalError(
        "shared buffer socket: the daemon answered no buffer id or another "
        "size");
  }
  if (!status.ok()) {
    ::munmap(p, size);
    ::close(*memfd);
    ::close(socket_fd);
    return status;
  }
  return SharedBuffer(socket_fd, *memfd, static_cast<uint8_t*>(p), size,
                      reply->buffer_id);
}

SharedBuffer::~SharedBuffer() { (void)Release(); }

SharedBuffer::SharedBuffer(SharedBuffer&& other) noexcept
    : socket_fd_(std::exchange(other.socket_fd_, -1)),
      memfd_(std::exchange(other.memfd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      id_(std::exchange(other.id_, 0)) {}

SharedBuffer& SharedBuffer::operator=(SharedBuffer&& other) noexcept {
  if (this != &other) {
    (void)Release();
    socket_fd_ = std::exchange(other.socket_fd_, -1);
    memfd_ = std::exchange(other.memfd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

absl::Status SharedBuffer::Release() {
  if (data_ == nullptr) return absl::OkStatus();
  shm_wire::Request request;
  request.op = shm_wire::kOpUnregister;
  request.tag = NextTag();
  request.buffer_id = id_;
  absl::StatusOr<shm_wire::Reply> reply = Exchange(socket_fd_, request, -1);
  absl::Status status =
      reply.ok() ? shm_wire::ReplyStatus(*reply) : reply.status();
  // Closing the connection ends the buffer on the daemon's side even when
  // UNREGISTER failed; only then unmap our pages.
  ::close(socket_fd_);
  ::munmap(data_, size_);
  ::close(memfd_);
  socket_fd_ = memfd_ = -1;
  data_ = nullptr;
  size_ = id_ = 0;
  return status;
}

}  // namespace gpumig::client
