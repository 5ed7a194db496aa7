#include "core/shm/test_registrar.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

namespace gpumig {
namespace shm {

int MakeMemfd(uint64_t size, int seals, bool allow_sealing) {
  int fd = memfd_create("gpumig-test",
                        MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return -1;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

int ConnectRegistration(const std::string& path) {
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

bool SendRaw(int sock, const void* data, size_t len,
             const std::vector<int>& fds) {
  iovec iov{const_cast<void*>(data), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> ctrl;
  if (!fds.empty()) {
    ctrl.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    mh.msg_control = ctrl.data();
    mh.msg_controllen = ctrl.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(sock, &mh, MSG_NOSIGNAL) == static_cast<ssize_t>(len);
}

bool SendRequest(int sock, const ShmRequest& r, const std::vector<int>& fds) {
  auto b = EncodeRequest(r);
  return SendRaw(sock, b.data(), b.size(), fds);
}

bool RecvReply(int sock, ShmReply* out) {
  uint8_t b[kReplySize + 1];
  ssize_t n = recv(sock, b, sizeof(b), 0);
  if (n != static_cast<ssize_t>(kReplySize)) return false;
  *out = DecodeReply(b);
  return true;
}

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

int CountMaps() {
  std::ifstream f("/proc/self/maps");
  int n = 0;
  std::string line;
  while (std::getline(f, line)) ++n;
  return n;
}

int CountMemfdMaps() {
  std::ifstream f("/proc/self/maps");
  int n = 0;
  std::string line;
  while (std::getline(f, line)) {
    if (line.find("memfd:gpumig-test") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace shm
}  // namespace gpumig
